"""The recognizer's work: an `audio.ready` event in (a whole recording or one piece of a long
one), its speech recognized in a slot process, the transcript stored, and `transcript.done`,
`job.failed` or the piece's progress out; and the start-up that loads the slots."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from recognizer import quality
from recognizer.engines import EngineConfig, EngineUnavailable
from recognizer.health import Health
from recognizer.interim import interim_subscriptions
from recognizer.live import live_subscriptions
from recognizer.pool import Detect, Request, Reservation, SlotPool
from recognizer.settings import RecognizerSettings
from recognizer.speaker_processes import (
    SpeakerLabeller,
    speaker_process_pool,
    start_speaker_labeller,
)
from recognizer.weights import ModelMissing, whisper_base
from shared import metrics
from shared.broker import Broker, Publish, Pull, Subscription
from shared.engines import AUTO_LANGUAGE, LOCAL_WHISPER_ENGINES, WHISPER_BASE
from shared.events import AudioReady, Event, PieceRecognized, RecognitionStarted, TranscriptDone
from shared.faults import MediaUnavailable, ServiceUnavailable
from shared.fleet import Fleet
from shared.jobs.models import Job, JobFailure, JobStatus, PieceResult, Progress, StoredVoice, now
from shared.jobs.store import JobStore
from shared.media_store import MediaStore, open_store
from shared.pipeline import already_handled, fail_job, noting_announcements
from shared.transcripts import Segment, Transcript, joined, shifted
from shared.worker import Halt

log = logging.getLogger(__name__)


class RecognizeHandler:
    """Recognizes one piece of a job's audio (most jobs are one piece). The piece that
    completes the set joins them all into the job's transcript."""

    def __init__(
        self,
        jobs: JobStore,
        store: MediaStore,
        pool: SlotPool,
        publish: Publish,
        timeout_seconds: float,
        health: Health,
        labeller: SpeakerLabeller | None = None,
    ) -> None:
        self._jobs = jobs
        self._labeller = labeller
        self._store = store
        self._pool = pool
        self._health = health
        self._publish = publish
        self._timeout_seconds = timeout_seconds

    async def __call__(self, event: AudioReady) -> Event | None:
        job = await self._jobs.get(event.job_id)
        if job is None or job.status.is_final:
            return await already_handled(self._jobs, event.job_id)
        if job.speaker_labels is not None and self._labeller is None:
            # Another recognizer of the fleet may label (and join): the message goes back for it.
            raise ServiceUnavailable("this recognizer does not label speakers (STT_SPEAKER_LABELS)")
        if event.is_piece and await self._jobs.is_recognized(job.job_id, event.piece_index):
            return await self._join_if_complete(event)
        try:
            async with self._store.piece(job.job_id, event.piece_index) as audio:
                return await self._recognize(job, event, audio)
        except MediaUnavailable as error:
            await self._health.media_missing(str(error))
            raise

    async def _recognize(self, job: Job, event: AudioReady, audio: Path) -> Event | None:
        voices: list[StoredVoice] | None = None
        async with self._pool.reserve() as slot:
            # Of a recording in pieces, the transcoder records these once it is converted.
            whole = {
                "duration_seconds": event.duration_seconds,
                "conversion_seconds": event.conversion_seconds,
            }
            started_job, first = await self._jobs.start_recognizing(
                event.job_id, **({} if event.is_piece else whole)
            )
            if started_job is None:  # it ended (cancelled, say) while it waited for a slot
                return await already_handled(self._jobs, event.job_id)
            job = started_job
            if first:
                await self._publish(RecognitionStarted(job_id=job.job_id))
            started = time.perf_counter()
            try:
                language = await self._language(slot, job, event, audio)
                log.info(
                    "job %s: recognizing piece %d of %s",
                    job.job_id, event.piece_index + 1, event.piece_count or "?",
                )  # fmt: skip
                request = Request(audio, job.options.in_language(language))
                transcript = await slot.transcribe(request, self._timeout_seconds)
                if self._labeller is not None and job.speaker_labels is not None:
                    # While the engine slot stays reserved: a recognizer keeps no more
                    # processes busy than it has slots.
                    voices = await self._labeller.voices(audio, transcript, event.offset_seconds)
                    if not event.is_piece:
                        transcript = await self._labeller.label(
                            self._jobs, job.job_id, transcript, voices, job.speaker_labels
                        )
            except JobFailure as failure:
                return await fail_job(self._jobs, job.job_id, failure)
            engine_seconds = time.perf_counter() - started
        self._health.fine()
        audio_seconds = event.piece_seconds or event.duration_seconds
        metrics.audio_recognized.labels(job.engine).inc(audio_seconds)
        metrics.speech_recovered.labels(job.engine).inc(transcript.recovered_seconds)
        if audio_seconds > 0:
            metrics.recognition_ratio.labels(job.engine).observe(engine_seconds / audio_seconds)
        log.info(
            "job %s: piece %d recognized in %.2f s",
            job.job_id, event.piece_index + 1, engine_seconds,
            extra={
                "duration_seconds": engine_seconds,
                "audio_seconds": audio_seconds,
                "engine": job.engine,
            },
        )  # fmt: skip
        if not event.is_piece:
            return await self._done(job.job_id, transcript, engine_seconds)
        return await self._piece_done(job, event, transcript, engine_seconds, voices)

    async def _language(self, slot: Reservation, job: Job, event: AudioReady, audio: Path) -> str:
        """The language to decode in: with `auto`, the pieces of one recording share the
        language most of its speech is in, heard in pieces spread over the whole recording,
        except a piece that is clearly in another language. A piece recognized while the
        recording is still being converted, before the whole can be heard, is decoded in its
        own."""
        if job.language != AUTO_LANGUAGE or not event.is_piece:
            return job.language
        if job.engine not in LOCAL_WHISPER_ENGINES:
            return job.detected_language or job.language
        own = await slot.detect_language(
            Detect((audio,), job.engine, quality.OWN_LANGUAGE_WINDOWS), self._timeout_seconds
        )
        majority = job.detected_language or await self._majority_language(slot, job)
        if own is not None and (
            majority is None or own.probability >= quality.SURE_OF_OWN_LANGUAGE
        ):
            return own.language
        return majority or job.language

    async def _majority_language(self, slot: Reservation, job: Job) -> str | None:
        """The language most of the recording's speech is in, claimed for the job; None while
        the recording is still being converted (its pieces are not all known yet)."""
        total = job.progress.pieces_total if job.progress else None
        if total is None:
            return None
        async with contextlib.AsyncExitStack() as fetched:
            spread_pieces = []
            for index in quality.spread(total):
                # The last pieces may still be on their way to the store.
                with contextlib.suppress(MediaUnavailable):
                    spread_pieces.append(
                        await fetched.enter_async_context(self._store.piece(job.job_id, index))
                    )
            if not spread_pieces:
                return None
            heard = await slot.detect_language(
                Detect(tuple(spread_pieces), job.engine), self._timeout_seconds
            )
        if heard is None:
            return None
        return await self._jobs.claim_language(job.job_id, heard.language, heard.probability)

    async def _done(
        self, job_id: str, transcript: Transcript, engine_seconds: float
    ) -> Event | None:
        done = await self._jobs.advance(
            job_id,
            JobStatus.DONE,
            allowed_from=(JobStatus.RECOGNIZING,),
            text=transcript.text,
            segments=[segment.model_dump() for segment in transcript.segments],
            confidence=transcript.confidence,
            provenance=transcript.provenance.model_dump() if transcript.provenance else None,
            detected_language=transcript.language,
            language_probability=transcript.language_probability,
            recovered_seconds=transcript.recovered_seconds,
            recognition_seconds=engine_seconds,
            speakers=(
                None
                if transcript.speakers is None
                else [talk.model_dump() for talk in transcript.speakers]
            ),
        )
        if done is None:
            return await already_handled(self._jobs, job_id)
        return TranscriptDone(job_id=job_id)

    async def _piece_done(
        self,
        job: Job,
        event: AudioReady,
        transcript: Transcript,
        engine_seconds: float,
        voices: list[StoredVoice] | None,
    ) -> Event | None:
        piece = PieceResult(
            job_id=job.job_id,
            index=event.piece_index,
            offset_seconds=event.offset_seconds,
            seconds=event.piece_seconds or event.duration_seconds,
            transcript=shifted(transcript, event.offset_seconds),
            engine_seconds=engine_seconds,
            worker=self._health.worker,
            voices=voices,
        )
        await self._jobs.save_piece(piece)
        counted = await self._jobs.count_piece(job.job_id, piece.index, piece.seconds)
        if counted is None or counted.progress is None:  # a copy of this message counted it
            return await self._join_if_complete(event)
        if counted.progress.complete:
            return await self._join(counted)
        started = counted.stage_times.get(JobStatus.RECOGNIZING)
        progress = counted.progress.model_copy(
            update={"eta_seconds": estimate_eta(counted.progress, started, now())}
        )
        await self._jobs.set_eta(job.job_id, progress.eta_seconds)
        return PieceRecognized(
            job_id=job.job_id,
            piece_index=piece.index,
            progress=progress,
            segments=await self._provisional(counted, piece),
        )

    async def _provisional(self, job: Job, piece: PieceResult) -> list[Segment]:
        """The piece's segments, labelled as the voices of the pieces done so far tell: labels
        may still change when the rest of the recording is heard."""
        if self._labeller is None or job.speaker_labels is None:
            return piece.transcript.segments
        try:
            labelled = await self._label(job, await self._jobs.pieces(job.job_id))
        except JobFailure as failure:  # the join tries again, and fails the job if it must
            log.warning("job %s: no provisional labels: %s", job.job_id, failure.message)
            return piece.transcript.segments
        end = piece.offset_seconds + piece.seconds
        return [s for s in labelled.segments if piece.offset_seconds <= s.start < end]

    async def _label(self, job: Job, pieces: list[PieceResult]) -> Transcript:
        """The pieces joined, and labelled if the job asks for speaker labels."""
        language = job.detected_language or pieces[0].transcript.language
        transcript = joined([(piece.transcript, piece.seconds) for piece in pieces], language)
        transcript = transcript.model_copy(
            update={"language_probability": job.language_probability}
        )
        if self._labeller is None or job.speaker_labels is None:
            return transcript
        voices = [voice for piece in pieces for voice in piece.voices or ()]
        return await self._labeller.label(
            self._jobs, job.job_id, transcript, voices, job.speaker_labels
        )

    async def _join_if_complete(self, event: AudioReady) -> Event | None:
        job = await self._jobs.get(event.job_id)
        if (
            job is not None
            and job.status is JobStatus.RECOGNIZING
            and job.progress is not None
            and job.progress.complete
        ):
            return await self._join(job)
        return await already_handled(self._jobs, event.job_id)

    async def _join(self, job: Job) -> Event | None:
        """Join the pieces of `job`, read after its last piece was counted."""
        pieces = await self._jobs.pieces(job.job_id)
        try:
            transcript = await self._label(job, pieces)
        except JobFailure as failure:
            return await fail_job(self._jobs, job.job_id, failure)
        log.info("job %s: joined %d pieces", job.job_id, len(pieces))
        engine_seconds = sum(piece.engine_seconds for piece in pieces)
        return await self._done(job.job_id, transcript, engine_seconds)


def estimate_eta(progress: Progress, started: datetime | None, moment: datetime) -> float | None:
    """Seconds until the rest of the audio is recognized, at the pace seen so far."""
    if started is None or progress.audio_seconds_done <= 0 or progress.audio_seconds_total is None:
        return None
    pace = progress.audio_seconds_done / max((moment - started).total_seconds(), 1e-3)
    remaining = max(progress.audio_seconds_total - progress.audio_seconds_done, 0.0)
    return round(remaining / pace, 1)


@contextlib.asynccontextmanager
async def subscriptions(
    settings: RecognizerSettings, broker: Broker, jobs: JobStore, halt: Halt
) -> AsyncIterator[list[Pull]]:
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
        batch_size=settings.whisper_batch_size,
        whisper_base_folder=base_folder,
        google_api_key=settings.google_api_key,
        openai_model=settings.openai_model,
        groq_model=settings.groq_model,
    )
    # A recognizer without slots must not stay at its queues: it exits, and its supervisor
    # restarts it.
    pool = SlotPool(
        settings.recognizer_slots,
        settings.engines,
        config,
        settings.recognizer_niceness,
        halt,
        settings.slot_restart_pause_seconds,
    )
    await pool.start()
    fleet = Fleet(jobs.database, settings.namespace)
    await fleet.ensure_indexes()
    labeller = None
    if settings.speaker_labels:
        speaker_processes = speaker_process_pool(
            settings.speaker_processes, config, settings.recognizer_niceness, halt
        )
        labeller = await start_speaker_labeller(
            speaker_processes, settings.recognition_timeout_seconds
        )
    health = Health(fleet, pool, settings.engines, labels_speakers=labeller is not None)
    metrics.slots.labels("busy").set_function(lambda: pool.busy)
    metrics.slots.labels("total").set_function(lambda: pool.size)
    try:
        handler = RecognizeHandler(
            jobs,
            open_store(settings.media_store, jobs.database, settings.media_dir),
            pool,
            broker.publish,
            settings.recognition_timeout_seconds,
            health,
            labeller,
        )
        announced = noting_announcements(jobs)
        # Whole recordings (short jobs) are taken before pieces of long ones, up to an age.
        queues = [broker.topology.recognizers[engine] for engine in settings.engines] + [
            broker.topology.pieces[engine] for engine in settings.engines
        ]
        subscriptions = tuple(
            Subscription(queue, AudioReady, handler, published=announced) for queue in queues
        )
        # Live sessions' utterances are taken before any file work: someone is waiting on them;
        # their interim passes after their utterances, and before file work too.
        subscriptions = (
            *live_subscriptions(settings, broker, jobs, pool, health),
            *interim_subscriptions(settings.engines, broker, pool),
            *subscriptions,
        )
        async with health.reporting():
            yield [
                Pull(
                    subscriptions,
                    lambda: 0 if health.resting else pool.size,
                    settings.oldest_first_after_seconds,
                )
            ]
    finally:
        await asyncio.to_thread(pool.close)
        if labeller is not None:
            await asyncio.to_thread(labeller.close)
