"""Runs the whole system on this machine: the MongoDB stand-in (unless a MongoDB URL is set) and
the four services as child processes. `make run` uses it, and so do the end-to-end tests.

    python -m scripts.stack            # gateway on :8000, one of each worker; Ctrl-C stops all
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from pymongo import AsyncMongoClient

from gateway.settings import GatewaySettings
from scripts.proxy import HAPROXY, haproxy_command, haproxy_config
from shared.failover import connect_once
from shared.fleet import Fleet
from shared.settings import CommonSettings
from shared.topology import Topology, build_topology

SERVICES = ("gateway", "transcoder", "recognizer", "janitor")
MANAGEMENT_PORT = 15672
ROOT = Path(__file__).resolve().parent.parent


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Stack:
    """Child processes started with one environment; `stop()` ends every one of them."""

    def __init__(self, env: dict[str, str], log_dir: Path | None = None) -> None:
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
        self.log_dir = log_dir
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def _spawn(
        self,
        name: str,
        command: list[str],
        quiet: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        output: IO[bytes] | int | None = subprocess.DEVNULL if quiet else None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((name, process))
        return process

    def start_mongodb_standin(self, data_dir: Path, port: int) -> str:
        data_dir.mkdir(parents=True, exist_ok=True)
        nx = Path(sys.executable).with_name("nx-27017")
        self._spawn(
            "mongodb",
            [
                str(nx), "--db", str(data_dir / "stt.db"), "--host", "127.0.0.1", "-p", str(port),
                "--pid-file", str(data_dir / "nx-27017.pid"),
                "--log-file", str(data_dir / "nx-27017.log"),
            ],
            quiet=True,  # it logs every command; its log file has them
        )  # fmt: skip
        wait_until(lambda: port_answers("127.0.0.1", port), 20, "the MongoDB stand-in")
        return f"mongodb://127.0.0.1:{port}"

    def start(self, service: str, **env: str) -> subprocess.Popen[bytes]:
        """Start `service`; `env` sets variables for this process alone."""
        return self._spawn(service, [sys.executable, "-m", service], env=env)

    def wait_ready(self, base_url: str, timeout: float = 60) -> None:
        def ready() -> bool:
            self.raise_if_exited()
            try:
                with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
                    return bool(response.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        wait_until(ready, timeout, f"the gateway at {base_url}", interval=0.2)

    def running(self, name: str) -> list[subprocess.Popen[bytes]]:
        return [
            process for each, process in self.processes if each == name and process.poll() is None
        ]

    def raise_if_exited(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every child (services first, the database last) and wait; kill stragglers.
        Interrupted while it waits (a second Ctrl-C), it kills every child left at once."""
        try:
            for _, process in reversed(self.processes):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout)
                _kill(process)
        finally:
            for _, process in self.processes:
                _kill(process)
            self.processes.clear()


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def consumed_queues(topology: Topology, service: str) -> list[str]:
    """The queues a running `service` consumes, by which the stack tells it is at work.
    Recognizers pull their messages instead of consuming: the fleet tells of them."""
    if service == "gateway":
        return [topology.callbacks.name]
    if service == "transcoder":
        return [topology.transcoder.name]
    if service == "janitor":
        return [topology.janitor.name]
    return []


async def until_consuming(
    settings: CommonSettings,
    services: tuple[str, ...],
    recognizer_pids: Collection[int] = (),
    within_seconds: float = 120,
) -> None:
    """Wait until every queue of every service in `services` has a consumer, and each
    recognizer process in `recognizer_pids` has reported to the fleet."""
    topology = build_topology(settings)
    queues = {q for service in services for q in consumed_queues(topology, service)}
    deadline = time.monotonic() + within_seconds
    connection = await connect_once([str(node) for node in settings.broker_nodes])
    async with connection:
        channel = await connection.channel()
        while queues:
            for name in sorted(queues):
                declared = await channel.declare_queue(name, passive=True)
                if declared.declaration_result.consumer_count:
                    queues.discard(name)
            if queues and time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing consumes {', '.join(sorted(queues))} after {within_seconds:.0f} s"
                )
            await asyncio.sleep(0.1)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(str(settings.mongodb_url))
    try:
        fleet = Fleet(client[settings.mongodb_database], settings.namespace)
        missing = set(recognizer_pids)
        while missing:
            missing -= {entry.pid for entry in await fleet.live()}
            if missing and time.monotonic() > deadline:
                raise TimeoutError(
                    f"recognizers {sorted(missing)} not at work after {within_seconds:.0f} s"
                )
            await asyncio.sleep(0.1)
    finally:
        await client.close()


async def delete_namespace(settings: CommonSettings) -> None:
    """Delete every queue and exchange of `settings.namespace` (tests and benchmarks clean up)."""
    topology = build_topology(settings)
    connection = await connect_once([str(node) for node in settings.broker_nodes])
    async with connection:
        channel = await connection.channel()
        for spec in topology.all_queues:
            await channel.queue_delete(spec.name)
        for exchange in (topology.exchange, *(spec.name for spec in topology.retries)):
            await channel.exchange_delete(exchange)


def main() -> None:
    # Started in the background, a process inherits SIGINT ignored; Ctrl-C and SIGTERM must stop it.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    settings = GatewaySettings()
    env: dict[str, str] = {}
    broker = urlsplit(str(settings.broker_nodes[0]))
    if not port_answers(broker.hostname or "127.0.0.1", broker.port or 5672):
        sys.exit(
            f"RabbitMQ does not answer at {broker.hostname}:{broker.port}. Start it with"
            " `sudo rabbitmq-server -detached` (Debian: `sudo apt-get install rabbitmq-server`)."
        )
    stack = Stack(env)
    try:
        if not _mongodb_url_configured():
            mongodb = urlsplit(str(settings.mongodb_url))
            port = mongodb.port or 27017
            if port_answers("127.0.0.1", port):
                print(f"stack: using the MongoDB already answering on port {port}")
            else:
                stack.start_mongodb_standin(ROOT / "var" / "mongodb", port)
                print(f"stack: MongoDB stand-in on port {port}, data in var/mongodb/")
        gateway_ports = start_gateways(stack, settings)
        for service in SERVICES:
            if service != "gateway":
                stack.start(service)
        gateway_port = settings.port
        for port in gateway_ports:
            stack.wait_ready(f"http://127.0.0.1:{port}", timeout=120)
        recognizers = [process.pid for process in stack.running("recognizer")]
        asyncio.run(until_consuming(settings, SERVICES, recognizers))
        if port_answers(broker.hostname or "127.0.0.1", MANAGEMENT_PORT):
            print(
                f"stack: RabbitMQ's management UI is on http://{broker.hostname}:{MANAGEMENT_PORT}"
                " (queues, parked messages)"
            )
        print(
            f"stack: ready; try  curl -F file=@speech.mp4 http://127.0.0.1:{gateway_port}/v1/jobs"
        )
        while True:
            stack.raise_if_exited()
            time.sleep(0.5)
    except KeyboardInterrupt as stop:
        hint = " (Ctrl-C again to kill the services at once)" if str(stop) == "SIGINT" else ""
        print(f"\nstack: stopping{hint}")
        code = 0
    except (RuntimeError, TimeoutError, OSError) as error:
        print(f"stack: {error}; stopping", file=sys.stderr)
        code = 1
    try:
        stack.stop()
    except KeyboardInterrupt:
        print("stack: killed the services")
        code = 130
    sys.exit(code)


def start_gateways(stack: Stack, settings: GatewaySettings) -> list[int]:
    """One gateway on STT_PORT; or STT_RUN_GATEWAYS of them on free ports of loopback, with
    HAProxy on STT_PORT in front. Returns every port to wait on."""
    if settings.run_gateways == 1:
        stack.start("gateway")
        return [settings.port]
    if HAPROXY is None:
        raise RuntimeError(
            f"STT_RUN_GATEWAYS={settings.run_gateways} needs HAProxy in front of the gateways;"
            " install it with: sudo apt-get install -y haproxy"
        )
    ports = [free_port() for _ in range(settings.run_gateways)]
    for port in ports:
        stack.start("gateway", STT_HOST="127.0.0.1", STT_PORT=str(port))
    folder = ROOT / "var" / "haproxy"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "haproxy.cfg"
    config.write_text(haproxy_config(settings.port, ports, settings.host))
    stack._spawn("haproxy", haproxy_command(str(config)))
    print(f"stack: {len(ports)} gateways behind HAProxy on port {settings.port}")
    return [*ports, settings.port]


def _mongodb_url_configured() -> bool:
    if "STT_MONGODB_URL" in os.environ:
        return True
    env_file = ROOT / ".env"
    return env_file.exists() and any(
        line.strip().startswith("STT_MONGODB_URL=") for line in env_file.read_text().splitlines()
    )


if __name__ == "__main__":
    main()
