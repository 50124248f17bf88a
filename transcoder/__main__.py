import functools

from shared.events import MediaUploaded
from shared.topology import build_topology
from shared.worker import run_worker, start
from transcoder.handler import transcode_handler
from transcoder.settings import TranscoderSettings


async def run(settings: TranscoderSettings) -> None:
    await run_worker(
        service="transcoder",
        settings=settings,
        queue=build_topology(settings).transcoder.name,
        event_type=MediaUploaded,
        handler_factory=functools.partial(transcode_handler, settings),
        prefetch=settings.transcoder_concurrency,
        grace_seconds=settings.shutdown_grace_seconds,
    )


if __name__ == "__main__":
    start("transcoder", TranscoderSettings, run)
