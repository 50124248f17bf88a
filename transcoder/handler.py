import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import httpx

from shared import metrics
from shared.broker import Broker, Publish, Subscription
from shared.events import AudioReady, Event, MediaUploaded
from shared.jobs.deadline import deadline_for
from shared.jobs.models import Job, JobFailure, JobStatus
from shared.jobs.store import JobStore
from shared.pipeline import already_handled, fail_job, noting_announcements
from shared.store import MediaStore, open_store
from shared.worker import Halt
from transcoder.convert import convert
from transcoder.fetch import Fetch, MediaFetcher, fetch_client
from transcoder.pieces import Piece, plan_pieces, write_piece
from transcoder.settings import TranscoderSettings

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class TranscodeHandler:
    """Converts the upload to WAV, cuts it at pauses and hands each piece to the recognizers
    as soon as it is written."""

    def __init__(
        self,
        jobs: JobStore,
        store: MediaStore,
        executor: ThreadPoolExecutor,
        publish: Publish,
        settings: TranscoderSettings,
        fetch: Fetch,
    ) -> None:
        """`fetch` gets the media of jobs given by URL."""
        self._jobs = jobs
        self._fetch = fetch
        self._store = store
        self._media = store.local
        self._executor = executor
        self._publish = publish
        self._settings = settings

    async def __call__(self, event: MediaUploaded) -> Event | None:
        job = await self._jobs.advance(
            event.job_id,
            JobStatus.TRANSCODING,
            allowed_from=(JobStatus.QUEUED, JobStatus.TRANSCODING),
        )
        if job is None:
            job = await self._jobs.get(event.job_id)
            # A transcoder that died while handing out pieces leaves a job being recognized
            # with pieces missing: hand them all out again (recognized ones are skipped).
            if job is None or job.status is not JobStatus.RECOGNIZING or job.audio_ready_at:
                return await already_handled(self._jobs, event.job_id)
        try:
            return await self._transcode(job)
        finally:
            # Whatever happened, what is left here is a copy: the pieces handed out are stored
            # (in a shared folder, they are the store and stay).
            await self._run(self._media.whole_audio(job.job_id).unlink, missing_ok=True)
            await self._store.release_local(job.job_id)

    async def _transcode(self, job: Job) -> Event | None:
        if job.source_url is not None and job.size_bytes == 0:
            try:
                fetched = await self._fetch_media(job, job.source_url)
            except JobFailure as failure:
                return await fail_job(self._jobs, job.job_id, failure)
            if fetched is None:
                return await already_handled(self._jobs, job.job_id)
            job = fetched
        started = time.perf_counter()
        whole = self._media.whole_audio(job.job_id)
        try:
            async with self._store.upload(job.job_id) as upload:
                duration = await convert(
                    upload,
                    whole,
                    self._settings.transcode_timeout_seconds,
                    self._settings.max_audio_seconds,
                )
            pieces = await self._run(plan_pieces, whole, self._settings.piece_seconds)
        except JobFailure as failure:
            return await fail_job(self._jobs, job.job_id, failure)
        conversion_seconds = time.perf_counter() - started
        metrics.conversion_seconds.observe(conversion_seconds)
        log.info(
            "job %s: %.1f s of audio converted and cut in %.2f s",
            job.job_id, duration, conversion_seconds,
            extra={"duration_seconds": conversion_seconds, "audio_seconds": duration},
        )  # fmt: skip
        await self._jobs.plan_pieces(
            job.job_id,
            pieces=len(pieces),
            audio_seconds=duration,
            deadline_at=deadline_for(job, self._settings, duration),
        )
        for piece in pieces:
            if await self._has_ended(job.job_id):
                log.info("job %s: ended (cancelled?); no more pieces handed out", job.job_id)
                return await already_handled(self._jobs, job.job_id)
            await self._hand_out(job, piece, len(pieces), duration, conversion_seconds)
        await self._jobs.audio_ready(job.job_id)
        if len(pieces) > 1:
            log.info("job %s: %.0f s of audio in %d pieces", job.job_id, duration, len(pieces))
        return None

    async def _fetch_media(self, job: Job, url: str) -> Job | None:
        """Fetch the media of a job given by URL into the store, as the gateway stores an
        upload; the job, or None if it ended meanwhile (cancelled, say)."""
        started = time.perf_counter()
        fetched = await self._fetch(url, self._media.upload(job.job_id))
        await self._store.keep_upload(job.job_id)
        log.info(
            "job %s: fetched %d bytes from %s in %.2f s",
            job.job_id, fetched.size_bytes, httpx.URL(url).host, time.perf_counter() - started,
        )  # fmt: skip
        return await self._jobs.advance(
            job.job_id,
            JobStatus.TRANSCODING,
            allowed_from=(JobStatus.TRANSCODING,),
            size_bytes=fetched.size_bytes,
            content_type=fetched.content_type,
        )

    async def _has_ended(self, job_id: str) -> bool:
        job = await self._jobs.get(job_id)
        return job is None or job.status.is_final

    async def _hand_out(
        self, job: Job, piece: Piece, count: int, duration: float, conversion_seconds: float
    ) -> None:
        target = self._media.piece(job.job_id, piece.index)
        whole = self._media.whole_audio(job.job_id)
        if count == 1:
            await self._run(whole.replace, target)
        else:
            await self._run(write_piece, whole, piece, target)
        await self._store.keep_piece(job.job_id, piece.index)
        await self._publish(
            AudioReady(
                job_id=job.job_id,
                engine=job.engine,
                duration_seconds=duration,
                conversion_seconds=conversion_seconds,
                piece_index=piece.index,
                piece_count=count,
                offset_seconds=piece.offset_seconds,
                piece_seconds=piece.seconds,
            )
        )

    async def _run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)


@contextlib.asynccontextmanager
async def subscriptions(
    settings: TranscoderSettings, broker: Broker, jobs: JobStore, _halt: Halt
) -> AsyncIterator[list[Subscription[Any]]]:
    store = open_store(settings.media_store, jobs.database, settings.media_dir)
    # Conversion is batch work: on a shared machine the gateway, broker and database answer first.
    # ffmpeg inherits the niceness.
    os.nice(settings.transcoder_niceness)
    # ffmpeg does the work in its own process; these threads only wait for it.
    with ThreadPoolExecutor(settings.transcoder_concurrency, "transcode") as executor:
        async with fetch_client(settings) as client:
            fetch = MediaFetcher(client, settings)
            handler = TranscodeHandler(jobs, store, executor, broker.publish, settings, fetch)
            yield [
                Subscription(
                    broker.topology.transcoder,
                    MediaUploaded,
                    handler,
                    settings.transcoder_concurrency,
                    published=noting_announcements(jobs),
                )
            ]
