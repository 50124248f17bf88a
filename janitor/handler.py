import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from janitor.cleanup import delete_files
from janitor.settings import JanitorSettings
from shared.broker import Broker
from shared.events import Event
from shared.jobs import JobStore
from shared.media import MediaPaths

log = logging.getLogger(__name__)


class CleanupHandler:
    """Takes any finishing event (transcript.done, job.failed) once the delay queue releases it."""

    def __init__(self, media: MediaPaths) -> None:
        self._media = media

    async def __call__(self, event: Event) -> None:
        deleted = await asyncio.to_thread(delete_files, self._media.of_job(event.job_id))
        log.info("job %s: deleted %d file(s)", event.job_id, deleted)


@contextlib.asynccontextmanager
async def cleanup_handler(
    settings: JanitorSettings, _broker: Broker, _jobs: JobStore
) -> AsyncIterator[CleanupHandler]:
    yield CleanupHandler(MediaPaths(settings.media_dir))
