"""The transcoder's work: a `media.uploaded` event in, the media fetched if it was given by URL,
converted to 16 kHz mono audio, and `audio.ready` out, or, for a long recording, one
`audio.piece` for each piece as it is cut."""

import asyncio
import contextlib
import functools
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import httpx

from shared import metrics
from shared.broker import Broker, Publish, Subscription
from shared.events import AudioReady, Event, MediaUploaded
from shared.fleet import Fleet
from shared.jobs.deadline import deadline_for
from shared.jobs.models import Job, JobFailure, JobStatus
from shared.jobs.store import JobStore
from shared.media_store import MediaStore, open_store
from shared.pipeline import already_handled, fail_job, noting_announcements
from shared.worker import Halt
from transcoder.convert import pcm_stream, timed_out, too_long
from transcoder.fetch import Fetch, MediaFetcher, fetch_client
from transcoder.pieces import FIRST_PIECE_SECONDS, MAX_SLOTS, Cutter, Piece, PieceFiles
from transcoder.settings import TranscoderSettings

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

SlotsServing = Callable[[str], Awaitable[int]]


async def one_slot(_engine: str) -> int:
    return 1


class TranscodeHandler:
    """Converts the upload to 16 kHz audio and, for a long recording, cuts it at pauses as the
    conversion goes, handing each piece to the recognizers as soon as it is cut."""

    def __init__(
        self,
        jobs: JobStore,
        store: MediaStore,
        executor: ThreadPoolExecutor,
        publish: Publish,
        settings: TranscoderSettings,
        fetch: Fetch,
        slots_serving: SlotsServing = one_slot,
    ) -> None:
        """`fetch` gets the media of jobs given by URL; `slots_serving` tells how many
        recognizer slots serve an engine, which the last pieces of a recording are cut for."""
        self._jobs = jobs
        self._fetch = fetch
        self._store = store
        self._media = store.local
        self._executor = executor
        self._publish = publish
        self._settings = settings
        self._slots_serving = slots_serving

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
        serving = min(max(await self._slots_serving(job.engine), 1), MAX_SLOTS)
        slots = await self._jobs.claim_piece_slots(job.job_id, serving)
        cutter = Cutter(
            self._settings.piece_seconds, first_seconds=FIRST_PIECE_SECONDS, slots=slots
        )
        # Each attempt spools to its own file, so a twin attempt never writes into it.
        whole = self._media.whole_audio(job.job_id)
        spool = whole.with_name(f"{whole.stem}.{uuid.uuid4().hex[:8]}{whole.suffix}")
        try:
            async with self._store.upload(job.job_id) as upload:
                files = await self._run(PieceFiles, spool, self._piece_path(job), cutter)
                try:
                    return await self._convert_in_pieces(job, upload, files)
                finally:
                    await self._run(files.close)
        except JobFailure as failure:
            return await fail_job(self._jobs, job.job_id, failure)
        finally:
            await self._run(spool.unlink, missing_ok=True)

    def _piece_path(self, job: Job) -> Callable[[int], Path]:
        return functools.partial(self._media.piece, job.job_id)

    async def _convert_in_pieces(self, job: Job, upload: Path, files: PieceFiles) -> Event | None:
        """Hand out the pieces as the conversion cuts them; the total is recorded once the
        conversion has ended, before the last piece goes out."""
        started = time.perf_counter()
        max_seconds = self._settings.max_audio_seconds
        handed_out = 0
        try:
            async with (
                asyncio.timeout(self._settings.transcode_timeout_seconds),
                pcm_stream(upload, max_seconds) as stream,
            ):
                while block := await stream.read():
                    pieces = await self._run(files.feed, block)
                    if files.seconds > max_seconds:
                        raise too_long(files.seconds, max_seconds)
                    for piece in pieces:
                        if handed_out == 0:
                            await self._jobs.start_pieces(job.job_id)
                        if not await self._hand_out(job, piece, None, files.seconds, None):
                            return await already_handled(self._jobs, job.job_id)
                        handed_out += 1
                rest = await self._run(files.finish)
        except TimeoutError as error:
            raise timed_out(self._settings.transcode_timeout_seconds) from error
        duration, count = files.seconds, handed_out + len(rest)
        conversion_seconds = time.perf_counter() - started
        metrics.conversion_seconds.observe(conversion_seconds)
        log.info(
            "job %s: %.1f s of audio converted in %.2f s, %d piece(s)",
            job.job_id, duration, conversion_seconds, count,
            extra={"duration_seconds": conversion_seconds, "audio_seconds": duration},
        )  # fmt: skip
        await self._jobs.plan_pieces(
            job.job_id,
            pieces=count,
            audio_seconds=duration,
            deadline_at=deadline_for(job, self._settings, duration),
            conversion_seconds=conversion_seconds,
        )
        for piece in rest:
            if not await self._hand_out(job, piece, count, duration, conversion_seconds):
                return await already_handled(self._jobs, job.job_id)
        await self._jobs.audio_ready(job.job_id)
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

    async def _hand_out(
        self,
        job: Job,
        piece: Piece,
        count: int | None,
        duration: float,
        conversion_seconds: float | None,
    ) -> bool:
        """Store the piece (written already) and publish it; False if the job has ended
        (cancelled, say), so no more pieces are to go out."""
        if await self._jobs.has_ended(job.job_id):
            log.info("job %s: ended (cancelled?); no more pieces handed out", job.job_id)
            return False
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
        return True

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
            fleet = Fleet(jobs.database, settings.namespace)
            handler = TranscodeHandler(
                jobs, store, executor, broker.publish, settings, fetch, fleet.slots_serving
            )
            yield [
                Subscription(
                    broker.topology.transcoder,
                    MediaUploaded,
                    handler,
                    settings.transcoder_concurrency,
                    published=noting_announcements(jobs),
                )
            ]
