import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from recognizer.engines import EngineConfig, EngineUnavailable, Steering
from recognizer.models import ModelMissing, whisper_base
from recognizer.pool import Request, SlotPool
from recognizer.settings import RecognizerSettings
from shared.broker import Broker, Subscription
from shared.engines import WHISPER_BASE
from shared.events import AudioReady, Event, TranscriptDone
from shared.jobs import JobFailure, JobStatus, JobStore
from shared.media import MediaPaths
from shared.pipeline import already_handled, fail_job


class RecognizeHandler:
    def __init__(
        self, jobs: JobStore, media: MediaPaths, pool: SlotPool, timeout_seconds: float
    ) -> None:
        self._jobs = jobs
        self._media = media
        self._pool = pool
        self._timeout_seconds = timeout_seconds

    async def __call__(self, event: AudioReady) -> Event | None:
        job = await self._jobs.advance(
            event.job_id,
            JobStatus.RECOGNIZING,
            allowed_from=(JobStatus.TRANSCODING, JobStatus.RECOGNIZING),
            duration_seconds=event.duration_seconds,
            conversion_seconds=event.conversion_seconds,
        )
        if job is None:
            return await already_handled(self._jobs, event.job_id)
        steering = Steering(job.prompt, job.temperature)
        request = Request(self._media.audio(job.job_id), job.engine, job.language, steering)
        started = time.perf_counter()
        try:
            transcript = await self._pool.transcribe(request, self._timeout_seconds)
        except JobFailure as failure:
            return await fail_job(self._jobs, job.job_id, failure)
        done = await self._jobs.advance(
            job.job_id,
            JobStatus.DONE,
            allowed_from=(JobStatus.RECOGNIZING,),
            text=transcript.text,
            segments=[segment.model_dump() for segment in transcript.segments],
            confidence=transcript.confidence,
            detected_language=transcript.language,
            recognition_seconds=time.perf_counter() - started,
        )
        if done is None:
            return await already_handled(self._jobs, job.job_id)
        return TranscriptDone(job_id=job.job_id)


@contextlib.asynccontextmanager
async def subscriptions(
    settings: RecognizerSettings, broker: Broker, jobs: JobStore
) -> AsyncIterator[list[Subscription[Any]]]:
    base_folder = None
    if WHISPER_BASE in settings.engines:
        try:
            folder = await asyncio.to_thread(whisper_base, settings.models_dir / "whisper-base")
        except ModelMissing as error:
            raise EngineUnavailable(f"Whisper base: {error}") from error
        base_folder = str(folder)
    config = EngineConfig(
        whisper_model=settings.whisper_model,
        cpu_threads=settings.recognizer_cpu_threads,
        beam_size=settings.whisper_beam_size,
        vad_filter=settings.whisper_vad,
        word_timestamps=settings.whisper_word_timestamps,
        whisper_base_folder=base_folder,
        google_api_key=settings.google_api_key,
        openai_model=settings.openai_model,
        groq_model=settings.groq_model,
    )
    pool = SlotPool(
        settings.recognizer_slots, settings.engines, config, settings.recognizer_niceness
    )
    await pool.start()
    try:
        handler = RecognizeHandler(
            jobs, MediaPaths(settings.media_dir), pool, settings.recognition_timeout_seconds
        )
        yield [
            Subscription(
                broker.topology.recognizers[engine], AudioReady, handler, settings.recognizer_slots
            )
            for engine in settings.engines
        ]
    finally:
        await asyncio.to_thread(pool.close)
