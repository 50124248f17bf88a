"""Recognizes the utterances of live sessions: each is a piece of the session's job, stored
before its text goes back to the gateway, so a recognizer that dies holding one loses nothing
(the message is acked only after the piece is stored and its event confirmed)."""

import logging
import time
from typing import Any

from recognizer.health import Health
from recognizer.pool import Request, SlotPool
from recognizer.settings import RecognizerSettings
from shared import metrics
from shared.broker import Broker, Publish, Subscription
from shared.events import Event, UtteranceReady, UtteranceRecognized
from shared.faults import BrokerUnavailable
from shared.jobs.models import JobError, JobFailure, PieceResult
from shared.jobs.store import JobStore
from shared.live import finish_if_complete
from shared.media_store import MediaStore, open_store
from shared.pipeline import announce_end
from shared.transcripts import Transcript, shifted

log = logging.getLogger(__name__)


class LiveHandler:
    def __init__(
        self,
        jobs: JobStore,
        store: MediaStore,
        pool: SlotPool,
        publish: Publish,
        timeout_seconds: float,
        worker: str,
    ) -> None:
        self._jobs = jobs
        self._store = store
        self._pool = pool
        self._publish = publish
        self._timeout_seconds = timeout_seconds
        self._worker = worker

    async def __call__(self, event: UtteranceReady) -> Event | None:
        job = await self._jobs.get(event.job_id)
        if job is None or job.status.is_final:
            log.info("job %s: live session over; utterance dropped", event.job_id)
            return None
        error: JobError | None = None
        piece = await self._jobs.piece(job.job_id, event.piece_index)
        if piece is None:  # not a redelivery of a stored one
            started = time.perf_counter()
            try:
                async with (
                    self._store.piece(job.job_id, event.piece_index) as audio,
                    self._pool.reserve() as slot,
                ):
                    log.info("job %s: recognizing utterance %d", job.job_id, event.piece_index)
                    request = Request(audio, job.options)
                    transcript = await slot.transcribe(request, self._timeout_seconds)
            except JobFailure as failure:
                # One utterance failing does not end the session: it is told, and goes on.
                log.warning(
                    "job %s: utterance %d failed: %s", job.job_id, event.piece_index, failure
                )
                error = JobError(code=failure.code, message=failure.message)
                transcript = Transcript(text="", language=job.language)
            engine_seconds = time.perf_counter() - started
            metrics.audio_recognized.labels(job.engine).inc(event.piece_seconds)
            piece = PieceResult(
                job_id=job.job_id,
                index=event.piece_index,
                offset_seconds=event.offset_seconds,
                seconds=event.piece_seconds,
                transcript=shifted(transcript, event.offset_seconds),
                engine_seconds=engine_seconds,
                worker=self._worker,
            )
            await self._jobs.save_piece(piece)
            log.info(
                "job %s: utterance %d recognized in %.2f s",
                job.job_id, event.piece_index, engine_seconds,
                extra={"duration_seconds": engine_seconds, "audio_seconds": event.piece_seconds},
            )  # fmt: skip
        counted = await self._jobs.count_piece(job.job_id, piece.index, piece.seconds)
        # A copy of this message may have counted it, and died before finishing the job.
        current = counted or await self._jobs.get(job.job_id)
        if current is not None:
            finished = await finish_if_complete(self._jobs, current)
            if finished is not None:
                await announce_end(self._jobs, self._publish, finished)
        recognized = UtteranceRecognized(
            job_id=job.job_id,
            piece_index=piece.index,
            text=piece.transcript.text,
            segments=piece.transcript.segments,
            error=error,
        )
        try:
            await self._publish(recognized)
        except BrokerUnavailable as error_publishing:
            # Unroutable once no gateway holds the session; the piece is stored, and a gateway
            # that still does finds it there.
            log.info("job %s: utterance text not delivered: %s", job.job_id, error_publishing)
        return None


def live_subscriptions(
    settings: RecognizerSettings, broker: Broker, jobs: JobStore, pool: SlotPool, health: Health
) -> tuple[Subscription[Any], ...]:
    """The live queues of the recognizer's engines, to pull before its other queues."""
    handler = LiveHandler(
        jobs,
        open_store(settings.media_store, jobs.database, settings.media_dir),
        pool,
        broker.publish,
        settings.recognition_timeout_seconds,
        health.worker,
    )
    return tuple(
        Subscription(broker.topology.live[engine], UtteranceReady, handler)
        for engine in settings.engines
    )
