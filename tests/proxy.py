"""Debian's HAProxy in front of several gateways on loopback, as a deployment puts it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from scripts.proxy import HAPROXY, haproxy_command, haproxy_config
from scripts.stack import free_port, port_answers, wait_until

__all__ = ["HAPROXY", "haproxy"]


@contextlib.contextmanager
def haproxy(folder: Path, gateway_ports: list[int]) -> Iterator[str]:
    """HAProxy in the foreground, its base URL yielded; stopped on exit."""
    port = free_port()
    config = folder / "haproxy.cfg"
    config.write_text(haproxy_config(port, gateway_ports))
    log = (folder / "haproxy.log").open("ab")
    process = subprocess.Popen(haproxy_command(str(config)), stdout=log, stderr=subprocess.STDOUT)
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
