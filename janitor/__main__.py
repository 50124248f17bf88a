import functools

from janitor.handler import cleanup_handler
from janitor.settings import JanitorSettings
from shared.events import Event
from shared.topology import build_topology
from shared.worker import run_worker, start


async def run(settings: JanitorSettings) -> None:
    await run_worker(
        service="janitor",
        settings=settings,
        queue=build_topology(settings).janitor.name,
        event_type=Event,
        handler_factory=functools.partial(cleanup_handler, settings),
        prefetch=settings.janitor_concurrency,
        grace_seconds=settings.shutdown_grace_seconds,
    )


if __name__ == "__main__":
    start("janitor", JanitorSettings, run)
