"""HAProxy in front of several gateways on this machine: `make run` with STT_RUN_GATEWAYS above
1, and the multi-gateway tests. compose has its own configuration (deploy/haproxy.cfg), which
finds the replicas through Docker's DNS instead of a list of ports."""

import shutil

HAPROXY = shutil.which("haproxy", path="/usr/sbin:/usr/bin")


def haproxy_config(port: int, gateway_ports: list[int], host: str = "127.0.0.1") -> str:
    """Round robin over the gateways that answer /readyz (looked at every half second). A
    connection a gateway refuses, as it stops, is tried again on another; a request that
    reached one is never sent twice, so an upload cannot become two jobs."""
    servers = "\n".join(
        f"    server gateway{number} 127.0.0.1:{gateway} check inter 500ms fall 1 rise 1"
        for number, gateway in enumerate(gateway_ports, start=1)
    )
    return f"""global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 10m
    timeout server 10m
    timeout tunnel 1h
    retries 3
    option redispatch 1
    # A connection to the gateway per request: one it closes as it stops is never reused.
    option http-server-close

frontend api
    bind {host}:{port}
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk GET /readyz
{servers}
"""


def haproxy_command(config_path: str) -> list[str]:
    """HAProxy in the foreground (-db), so that the one who starts it can stop it."""
    assert HAPROXY is not None, "haproxy is not installed: apt-get install -y haproxy"
    return [HAPROXY, "-f", config_path, "-db"]
