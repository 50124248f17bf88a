"""The job a live session keeps: created as the session starts, marked alive while it lasts, a
piece stored for each utterance, and ended with the session (done once every utterance is
recognized)."""

import asyncio
import contextlib
import logging
from datetime import timedelta

from pymongo.errors import PyMongoError

from gateway.live.admission import SESSION_ALIVE_SECONDS
from gateway.live.config import LiveConfig
from gateway.live.interim import NoteOut
from gateway.live.turns import RATE, Utterance
from gateway.services import Services
from shared.faults import BrokerUnavailable
from shared.jobs.deadline import deadline_for
from shared.jobs.models import Job, JobStatus, Progress, now
from shared.live import finish_if_complete
from shared.pipeline import announce_end
from shared.wav import write_wav

log = logging.getLogger(__name__)


async def start_job(services: Services, job_id: str, config: LiveConfig, owner: str | None) -> Job:
    """The session's job, recognizing from the start: its pieces are the utterances to come."""
    settings, jobs = services.settings, services.jobs
    job = await jobs.create(
        job_id,
        config.options,
        filename="live session",
        size_bytes=0,
        content_type="audio/pcm",
        owner=owner,
        settings=settings,
    )
    await jobs.advance(
        job_id,
        JobStatus.RECOGNIZING,
        allowed_from=(JobStatus.QUEUED,),
        live=True,
        live_seen_at=now(),
        progress=Progress(pieces_total=0, audio_seconds_total=0.0).model_dump(),
        # As long as the longest session's audio may need.
        deadline_at=deadline_for(job, settings, settings.live_max_session_seconds),
    )
    log.info("job %s: live session started%s", job_id, f" for key {owner}" if owner else "")
    return job


async def keep_alive(services: Services, job_id: str) -> None:
    """Mark the session's job alive, so every gateway counts the session for its key."""
    while True:
        await asyncio.sleep(SESSION_ALIVE_SECONDS)
        try:
            await services.jobs.note_live_alive(job_id)
        except PyMongoError as error:
            log.warning("job %s: session not marked alive: %r", job_id, error)


async def record_choice(services: Services, job_id: str, config: LiveConfig) -> None:
    """The engine, language and prompt the client chose, in the job (before any utterance)."""
    await services.jobs.advance(
        job_id,
        JobStatus.RECOGNIZING,
        allowed_from=(JobStatus.RECOGNIZING,),
        **config.options.model_dump(),
    )


def interim_notes(services: Services, job_id: str, owner: str | None) -> NoteOut:
    """How the session tells its job that an interim pass is out, and for how long at most. A
    pass answered or given up may leave room in the key's fair share for a held upload. The
    note is bookkeeping: the database failing it never ends the session."""

    async def note(seconds: float | None) -> None:
        until = None if seconds is None else now() + timedelta(seconds=seconds)
        try:
            await services.jobs.note_interim_pass(job_id, until)
            if until is None:
                await services.fair_share.release(owner)
        except PyMongoError as error:
            log.warning("job %s: interim pass not noted: %r", job_id, error)

    return note


def write_utterance(services: Services, job_id: str, index: int, utterance: Utterance) -> None:
    """The utterance as the job's piece `index`, on disk (work for the live threads)."""
    pcm = utterance.samples.astype("<i2").tobytes()
    write_wav(services.store.local.piece(job_id, index), pcm, RATE)


async def keep_utterance(services: Services, job_id: str, index: int, seconds: float) -> None:
    """Store the piece `write_utterance` wrote, and count it in the job."""
    await services.store.keep_piece(job_id, index)
    await services.jobs.add_live_piece(job_id, seconds)


async def end_job(services: Services, job_id: str, seconds: float, utterances: int) -> None:
    """Record the session's end; the job is done now if every utterance is recognized, else
    when the last one is."""
    jobs = services.jobs
    ended: Job | None = await jobs.end_live(job_id, seconds)
    log.info("job %s: live session ended, %d utterance(s)", job_id, utterances)
    if ended is None:
        return
    done = await finish_if_complete(jobs, ended)
    if done is not None:
        with contextlib.suppress(BrokerUnavailable):  # the janitor announces it later
            await announce_end(jobs, services.broker.publish, done)
