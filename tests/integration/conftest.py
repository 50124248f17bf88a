"""Real parts for the integration tier: RabbitMQ on 127.0.0.1, a MongoDB wire-protocol server,
and every test in its own namespace, so the exchange and queues it sees are its own."""

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from scripts.stack import SERVICES, Stack, delete_namespace, free_port, until_consuming
from shared.jobs.store import JobStore
from shared.settings import CommonSettings

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
# The fast engine (tiny.en), named by tests that need a job's words but not the default engine
# (Whisper base, which takes about 1.7 times as long).
FAST = "faster-whisper"
# For stacks whose tests use one engine alone: slots start sooner with one model, and with
# whisper-base not served, the default engine is this one.
ONLY_WHISPER = (FAST,)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid.split("::")[0]:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    stack = Stack({})
    try:
        yield stack.start_mongodb_standin(tmp_path_factory.mktemp("mongodb"), free_port())
    finally:
        stack.stop()


class Database:
    """A MongoDB stand-in of the module's own, so it can be stopped and started again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.stack = Stack({})
        self.url = self.start()

    def start(self) -> str:
        return self.stack.start_mongodb_standin(self.folder, self.port)

    def stop(self) -> None:
        self.stack.stop()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(tmp_path_factory.mktemp("module-db"))
    yield db
    db.stop()


def namespaced_settings(mongodb_url: str, media_dir: Path, **overrides: Any) -> CommonSettings:
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    values: dict[str, Any] = {
        "broker_url": BROKER_URL,
        "mongodb_url": mongodb_url,
        "mongodb_database": namespace.replace("-", "_"),
        "namespace": namespace,
        "media_dir": media_dir,
        **overrides,
    }
    return CommonSettings(**values)


@pytest.fixture
async def settings(mongodb_url: str, tmp_path: Path) -> AsyncIterator[CommonSettings]:
    common = namespaced_settings(
        mongodb_url,
        tmp_path / "media",
        delivery_limit=2,
        cleanup_delay_seconds=1,
        retry_delays_seconds=(0.3, 0.6),
    )
    yield common
    await delete_namespace(common)


@pytest.fixture
async def jobs(settings: CommonSettings) -> AsyncIterator[JobStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        str(settings.mongodb_url), tz_aware=True
    )
    try:
        yield JobStore(client, settings.mongodb_database)
    finally:
        await client.close()


@dataclass
class RunningSystem:
    settings: CommonSettings
    stack: Stack
    base_url: str
    log_dir: Path

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30)

    def start(self, service: str, **env: str) -> subprocess.Popen[bytes]:
        return self.stack.start(service, **env)

    def only(self, service: str) -> subprocess.Popen[bytes]:
        """The one running process of `service`."""
        [process] = self.stack.running(service)
        return process

    async def until_at_work(
        self, services: tuple[str, ...] = ("recognizer",), within: float = 60
    ) -> None:
        """Wait until every running process of `services` is at work: consuming its queue, or
        for a recognizer (a restarted one, say), reporting to the fleet with its engines loaded."""
        recognizers = [process.pid for process in self.stack.running("recognizer")]
        await until_consuming(self.settings, services, recognizers, within)


CLEANUP_DELAY_SECONDS = 2
EVENTS_KEEPALIVE_SECONDS = 0.5


def as_environment(settings: CommonSettings, **extra: object) -> dict[str, str]:
    """The STT_* variables that make a service read `settings` (and `extra`)."""
    values = {**settings.model_dump(), **extra}
    return {
        f"STT_{name.upper()}": ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        for name, value in values.items()
        if value is not None  # unset: the service's own default
    }


@contextlib.asynccontextmanager
async def launched(
    root: Path,
    mongodb_url: str,
    services: tuple[str, ...] = SERVICES,
    delete_queues: bool = True,
    **overrides: Any,
) -> AsyncIterator[RunningSystem]:
    """The four services as real processes in a namespace of their own. `delete_queues=False`
    leaves its queues behind, for a broker thrown away with them."""
    port = free_port()
    gateway = {
        "port": port,
        "max_upload_bytes": 5 * 1024 * 1024,
        "native_wait_seconds": 60,
        # The speaker model (torch: ~300 MB and seconds to load per recognizer) only where a
        # test asks for it with speaker_labels=True.
        "speaker_labels": False,
    }
    common_overrides = {k: v for k, v in overrides.items() if k in CommonSettings.model_fields}
    common = namespaced_settings(mongodb_url, root / "media", **common_overrides)
    env = as_environment(common, **{**gateway, **overrides})
    stack = Stack(env, log_dir=root / "logs")
    try:
        for service in services:
            stack.start(service)
        await asyncio.to_thread(stack.wait_ready, f"http://127.0.0.1:{port}", 120)
        running = RunningSystem(common, stack, f"http://127.0.0.1:{port}", root / "logs")
        await running.until_at_work(services, 120)
        yield running
    finally:
        stack.stop()
        if delete_queues:
            await delete_namespace(common)


def stack_fixture(folder: str, **settings: Any) -> Any:
    """A module's fixture: the services (`launched`, with `settings`) started once for the
    module, their files in a temporary folder named after `folder`."""

    @pytest.fixture(scope="module")
    async def running_stack(
        mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
    ) -> AsyncIterator[RunningSystem]:
        async with launched(tmp_path_factory.mktemp(folder), mongodb_url, **settings) as running:
            yield running

    return running_stack


@pytest.fixture(scope="session")
async def system(
    mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningSystem]:
    """The four services, started once for the session."""
    root = tmp_path_factory.mktemp("system")
    async with launched(
        root,
        mongodb_url,
        cleanup_delay_seconds=CLEANUP_DELAY_SECONDS,
        events_keepalive_seconds=EVENTS_KEEPALIVE_SECONDS,
    ) as running:
        yield running
