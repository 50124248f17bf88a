import functools

from recognizer.handler import recognize_handler
from recognizer.settings import RecognizerSettings
from shared.events import AudioReady
from shared.topology import build_topology
from shared.worker import run_worker, start


async def run(settings: RecognizerSettings) -> None:
    await run_worker(
        service="recognizer",
        settings=settings,
        queue=build_topology(settings).recognizer.name,
        event_type=AudioReady,
        handler_factory=functools.partial(recognize_handler, settings),
        prefetch=settings.recognizer_slots,
        grace_seconds=settings.shutdown_grace_seconds,
    )


if __name__ == "__main__":
    start("recognizer", RecognizerSettings, run)
