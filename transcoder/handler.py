import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.broker import Broker, Subscription
from shared.events import AudioReady, Event, MediaUploaded
from shared.jobs import JobFailure, JobStatus, JobStore
from shared.media import MediaPaths
from shared.pipeline import already_handled, fail_job
from transcoder.convert import to_wav
from transcoder.settings import TranscoderSettings


class TranscodeHandler:
    def __init__(
        self,
        jobs: JobStore,
        media: MediaPaths,
        executor: ThreadPoolExecutor,
        timeout_seconds: float,
    ) -> None:
        self._jobs = jobs
        self._media = media
        self._executor = executor
        self._timeout_seconds = timeout_seconds

    async def __call__(self, event: MediaUploaded) -> Event | None:
        job = await self._jobs.advance(
            event.job_id,
            JobStatus.TRANSCODING,
            allowed_from=(JobStatus.QUEUED, JobStatus.TRANSCODING),
        )
        if job is None:
            return await already_handled(self._jobs, event.job_id)
        started = time.perf_counter()
        try:
            duration = await asyncio.get_running_loop().run_in_executor(
                self._executor,
                to_wav,
                self._media.upload(job.job_id),
                self._media.audio(job.job_id),
                self._timeout_seconds,
            )
        except JobFailure as failure:
            return await fail_job(self._jobs, job.job_id, failure)
        return AudioReady(
            job_id=job.job_id,
            engine=job.engine,
            duration_seconds=duration,
            conversion_seconds=time.perf_counter() - started,
        )


@contextlib.asynccontextmanager
async def subscriptions(
    settings: TranscoderSettings, broker: Broker, jobs: JobStore
) -> AsyncIterator[list[Subscription[Any]]]:
    media = MediaPaths(settings.media_dir)
    media.create_folders()
    # Conversion is batch work: on a shared machine the gateway, broker and database answer first.
    # ffmpeg inherits the niceness.
    os.nice(settings.transcoder_niceness)
    # ffmpeg does the work in its own process; these threads only wait for it.
    with ThreadPoolExecutor(settings.transcoder_concurrency, "transcode") as executor:
        handler = TranscodeHandler(jobs, media, executor, settings.transcode_timeout_seconds)
        yield [
            Subscription(
                broker.topology.transcoder, MediaUploaded, handler, settings.transcoder_concurrency
            )
        ]
