"""The life of every worker service: connect, consume one queue, stop gracefully on SIGTERM."""

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from aio_pika.exceptions import AMQPConnectionError
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from shared.broker import Broker, Pull, Subscription
from shared.faults import StartupError
from shared.jobs.store import JobStore, connect_store
from shared.liveness import Liveness, Phase, serve_probes
from shared.logs import configure_logging
from shared.media import MediaPaths
from shared.media_store import sweep_scratch_every
from shared.settings import CommonSettings, location

log = logging.getLogger(__name__)

SettingsT = TypeVar("SettingsT", bound=CommonSettings)
Halt = Callable[[str], None]
"""Ends the service as SIGTERM would, but with a failure exit status, so its supervisor
restarts it: for a worker that finds itself unable to work."""
SubscriptionsFactory = Callable[
    [Broker, JobStore, Halt], AbstractAsyncContextManager[Sequence[Subscription[Any] | Pull]]
]


class Halted(Exception):
    """The service ended itself (see Halt)."""


_UNREACHABLE = (AMQPConnectionError, ConnectionFailure)


async def until_reachable(
    what: str, attempt: Callable[[], Awaitable[object]], patience_seconds: float
) -> None:
    """Retry `attempt` with growing pauses while `what` does not answer, for a bounded time,
    so services may start before (or while restarting) the broker and the database."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_seconds
    pause = 0.5
    while True:
        try:
            await attempt()
            return
        except (*_UNREACHABLE, OSError) as error:
            if loop.time() + pause > deadline:
                raise StartupError(
                    f"{what} did not answer for {patience_seconds:g} s: {error}"
                ) from error
            log.warning("%s does not answer (%s); trying again in %g s", what, error, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5)


@contextlib.asynccontextmanager
async def connected(settings: CommonSettings) -> AsyncIterator[tuple[Broker, JobStore]]:
    """A broker connection with the topology declared, and the job store with its indexes,
    closed on exit. Meanwhile the service's media folder is swept of orphaned files."""
    client, jobs = connect_store(str(settings.mongodb_url), settings.mongodb_database)
    broker = Broker(settings)
    sweeping = None
    try:
        patience = settings.startup_timeout_seconds
        rabbitmq = f"RabbitMQ at {', '.join(map(location, settings.broker_nodes))}"
        mongodb = (
            f"MongoDB at {location(settings.mongodb_url)} (database {settings.mongodb_database})"
        )
        await until_reachable(rabbitmq, broker.connect, patience)
        await until_reachable(mongodb, jobs.ping, patience)
        await jobs.ensure_indexes(settings.retention_days)
        paths = MediaPaths(settings.media_dir)
        sweeping = asyncio.create_task(sweep_scratch_every(paths, jobs, settings))
        yield broker, jobs
    finally:
        if sweeping is not None:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
        await broker.close()
        await client.close()


@contextlib.asynccontextmanager
async def probed(port: int) -> AsyncIterator[Liveness]:
    """The worker's liveness, beating on the event loop, with the probes and the metrics served
    on `port` (none when it is 0)."""
    liveness = Liveness()
    beating = asyncio.create_task(liveness.keep_beating())
    server = serve_probes(port, liveness) if port else None
    if server is not None:
        log.info("metrics and probes on http://0.0.0.0:%d", port)
    try:
        yield liveness
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()


async def run_worker(
    service: str, settings: CommonSettings, subscriptions: SubscriptionsFactory
) -> None:
    """Consume until SIGTERM or SIGINT, then let the work in hand finish within the grace period."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    halted: list[str] = []

    def halt(why: str) -> None:
        log.error("%s halting: %s", service, why)
        halted.append(why)
        stop.set()

    async with (
        probed(settings.metrics_port) as liveness,
        connected(settings) as (broker, jobs),
        subscriptions(broker, jobs, halt) as consumed,
    ):
        for subscription in consumed:
            if isinstance(subscription, Pull):
                await broker.pull(subscription, on_failure=halt)
            else:
                await broker.consume(subscription)
        liveness.phase = Phase.CONSUMING
        log.info("%s ready", service)
        await stop.wait()
        liveness.phase = Phase.STOPPING
        log.info("%s stopping", service)
        await broker.stop_consuming(settings.shutdown_grace_seconds)
    if halted:
        raise Halted(halted[0])
    log.info("%s stopped", service)


def start(
    service: str,
    settings_type: type[SettingsT],
    run: Callable[[SettingsT], Coroutine[Any, Any, None]],
) -> None:
    """Entry point of `python -m <service>`: configuration and start-up errors end it readably."""
    try:
        settings = settings_type()
    except ValidationError as error:
        sys.exit(f"{service}: invalid configuration:\n{error}")
    configure_logging(service, settings.log_level, settings.log_format)
    try:
        asyncio.run(run(settings))
    except StartupError as error:
        log.error("%s cannot start: %s", service, error)
        sys.exit(1)
    except Halted as error:
        log.error("%s stopped: %s", service, error)
        sys.exit(1)
