"""Real parts for the integration tier: RabbitMQ on 127.0.0.1, a MongoDB wire-protocol server,
and every test in its own namespace, so the exchange and queues it sees are its own."""

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from pymongo import AsyncMongoClient

from scripts.stack import SERVICES, Stack, free_port
from shared.jobs import JobStore
from shared.settings import CommonSettings
from shared.topology import build_topology

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"


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


async def remove_topology(settings: CommonSettings) -> None:
    topology = build_topology(settings)
    connection = await aio_pika.connect(str(settings.broker_url))
    async with connection:
        channel = await connection.channel()
        for spec in topology.all_queues:
            await channel.queue_delete(spec.name)
        await channel.exchange_delete(topology.exchange)


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
    await remove_topology(common)


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


CLEANUP_DELAY_SECONDS = 2


@pytest.fixture(scope="session")
async def system(
    mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningSystem]:
    """The four services as real processes, started once for the session."""
    root = tmp_path_factory.mktemp("system")
    common = namespaced_settings(
        mongodb_url, root / "media", cleanup_delay_seconds=CLEANUP_DELAY_SECONDS
    )
    port = free_port()
    env = {
        "STT_BROKER_URL": str(common.broker_url),
        "STT_MONGODB_URL": str(common.mongodb_url),
        "STT_MONGODB_DATABASE": common.mongodb_database,
        "STT_NAMESPACE": common.namespace,
        "STT_MEDIA_DIR": str(common.media_dir),
        "STT_CLEANUP_DELAY_SECONDS": str(CLEANUP_DELAY_SECONDS),
        "STT_PORT": str(port),
        "STT_MAX_UPLOAD_BYTES": str(5 * 1024 * 1024),
        "STT_NATIVE_WAIT_SECONDS": "60",
    }
    stack = Stack(env, log_dir=root / "logs")
    try:
        for service in SERVICES:
            stack.start(service)
        stack.wait_ready(f"http://127.0.0.1:{port}", timeout=120)
        yield RunningSystem(common, stack, f"http://127.0.0.1:{port}", root / "logs")
    finally:
        stack.stop()
        await remove_topology(common)
