"""Fresh RabbitMQ nodes on this machine, joined into one cluster, for the cluster tier.

Each node has its own name, AMQP port, distribution port and folders (owned by the `rabbitmq`
user, to which `rabbitmq-server` drops). The shared broker on 5672 is never touched: its name,
port and data stay apart, and it is never joined.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from scripts.stack import free_port, port_answers

SBIN = Path("/usr/sbin")
BOOT_SECONDS = 180


@dataclass(frozen=True)
class Node:
    name: str
    """The Erlang node name, `name@localhost`."""
    port: int
    home: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def pid_file(self) -> Path:
        return self.home / "rabbit.pid"

    def environment(self, dist_port: int) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq"),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.home / "feature_flags"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
        }

    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.pid_file.read_text().strip())
        return None


def rabbitmqctl(node: Node, *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [str(SBIN / "rabbitmqctl"), "-n", node.name, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {node.name}: {done.stderr.strip()}")
    return done.stdout


class Cluster:
    """`size` nodes of one cluster; `stop()` ends them all and deletes their data."""

    def __init__(self, size: int) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stt-cluster-"))
        tag = uuid.uuid4().hex[:6]
        self.nodes = [
            Node(f"stt-{tag}-{index}@localhost", free_port(), self.root / str(index))
            for index in range(1, size + 1)
        ]
        self.killed: set[str] = set()

    def start(self) -> None:
        for node in self.nodes:
            (node.home / "mnesia").mkdir(parents=True)
            (node.home / "log").mkdir()
            (node.home / "rabbitmq.conf").write_text(
                f"listeners.tcp.local = 127.0.0.1:{node.port}\n"
                # guest may log in from loopback only, which is where the services are.
                "loopback_users.guest = true\n"
            )
            (node.home / "enabled_plugins").write_text("[].\n")
        shutil.chown(self.root, "rabbitmq", "rabbitmq")
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.root)], check=True)
        for node in self.nodes:
            subprocess.run(
                [str(SBIN / "rabbitmq-server"), "-detached"],
                env=node.environment(free_port()),
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        with ThreadPoolExecutor(len(self.nodes)) as booting:
            list(booting.map(self._await_boot, self.nodes))
        first, *others = self.nodes
        for node in others:
            rabbitmqctl(node, "stop_app")
            rabbitmqctl(node, "join_cluster", first.name)
            rabbitmqctl(node, "start_app")
        for node in self.nodes:
            rabbitmqctl(node, "await_startup", "--timeout", str(BOOT_SECONDS))

    def _await_boot(self, node: Node) -> None:
        deadline = time.monotonic() + BOOT_SECONDS
        while not port_answers("127.0.0.1", node.port):
            if time.monotonic() > deadline:
                log = "\n".join(p.read_text()[-2000:] for p in (node.home / "log").glob("*.log"))
                raise TimeoutError(f"{node.name} did not boot in {BOOT_SECONDS} s:\n{log}")
            time.sleep(0.5)
        rabbitmqctl(node, "await_startup", "--timeout", str(BOOT_SECONDS))

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def alive(self) -> list[Node]:
        return [node for node in self.nodes if node.name not in self.killed]

    def leader_of(self, queue: str) -> Node:
        """The node that leads the quorum queue `queue` now, as the cluster tells it."""
        listing = rabbitmqctl(
            self.alive()[0], "list_queues", "name", "leader", "--formatter", "json", "--quiet"
        )
        leaders = {row["name"]: row["leader"] for row in json.loads(listing)}
        return next(node for node in self.nodes if node.name == leaders[queue])

    def kill(self, node: Node) -> None:
        """SIGKILL the node's Erlang VM: no goodbye to its peers or its clients."""
        pid = node.pid()
        assert pid is not None, f"{node.name} has no pid file"
        os.kill(pid, signal.SIGKILL)
        self.killed.add(node.name)

    def stop(self) -> None:
        for node in self.nodes:
            pid = node.pid()
            if node.name not in self.killed and pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
