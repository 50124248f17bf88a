"""Debian's HAProxy in front of several gateways on loopback, as a deployment puts it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from scripts.stack import free_port, port_answers, wait_until

HAPROXY = shutil.which("haproxy", path="/usr/sbin:/usr/bin")


def haproxy_config(port: int, gateway_ports: list[int]) -> str:
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
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
    retries 3
    option redispatch 1
    # A connection to the gateway per request: one it closes as it stops is never reused.
    option http-server-close

frontend api
    bind 127.0.0.1:{port}
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk GET /readyz
{servers}
"""


@contextlib.contextmanager
def haproxy(folder: Path, gateway_ports: list[int]) -> Iterator[str]:
    """HAProxy in the foreground, its base URL yielded; stopped on exit."""
    assert HAPROXY is not None, "haproxy is not installed (scripts/bootstrap.sh --dev)"
    port = free_port()
    config = folder / "haproxy.cfg"
    config.write_text(haproxy_config(port, gateway_ports))
    log = (folder / "haproxy.log").open("ab")
    process = subprocess.Popen(
        [HAPROXY, "-f", str(config), "-db"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: port_answers("127.0.0.1", port), 10, "HAProxy")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
