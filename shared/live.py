"""The end of a live session's job: done once the session has ended and every utterance it
handed out is recognized. The gateway (as the session ends) and the recognizer (as the last
utterance is stored) both ask; the conditional move to `done` lets only one of them finish it, and
that one announces it (shared.pipeline.announce_end)."""

import logging

from shared.events import UtteranceRecognized
from shared.jobs.models import Job, JobError, JobStatus, PieceResult
from shared.jobs.store import JobStore
from shared.transcripts import Transcript, joined

log = logging.getLogger(__name__)


def is_complete(job: Job) -> bool:
    return (
        job.live
        and job.live_ended_at is not None
        and job.status is JobStatus.RECOGNIZING
        and job.progress is not None
        and job.progress.complete
    )


async def finish_if_complete(jobs: JobStore, job: Job) -> Job | None:
    """Join the utterances into the job's transcript if the session is complete; the job, done,
    or None when it is not complete or another caller finished it."""
    if not is_complete(job):
        return None
    pieces = await jobs.pieces(job.job_id)
    language = job.detected_language or next(
        (piece.transcript.language for piece in pieces), job.language
    )
    transcript = joined([(piece.transcript, piece.seconds) for piece in pieces], language)
    done = await jobs.advance(
        job.job_id,
        JobStatus.DONE,
        allowed_from=(JobStatus.RECOGNIZING,),
        text=transcript.text,
        segments=[segment.model_dump() for segment in transcript.segments],
        confidence=transcript.confidence,
        detected_language=transcript.language,
        recognition_seconds=sum(piece.engine_seconds for piece in pieces),
    )
    if done is None:
        return None
    log.info("job %s: live session of %d utterance(s) joined", job.job_id, len(pieces))
    return done


async def give_up_utterance(
    jobs: JobStore, job: Job, index: int, error: JobError, worker: str
) -> tuple[Job | None, UtteranceRecognized]:
    """Count an utterance that will not be recognized as an empty piece, so that the session's
    job still completes; the job after (None if counted before), and the event that tells the
    session the utterance failed."""
    empty = PieceResult(
        job_id=job.job_id,
        index=index,
        offset_seconds=0.0,
        seconds=0.0,
        transcript=Transcript(text="", language=job.language),
        engine_seconds=0.0,
        worker=worker,
    )
    await jobs.save_piece(empty)
    counted = await jobs.count_piece(job.job_id, index, 0.0)
    told = UtteranceRecognized(job_id=job.job_id, piece_index=index, text="", error=error)
    return counted, told
