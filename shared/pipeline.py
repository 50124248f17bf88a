"""What every stage does when a job ends or was already handled, so redeliveries stay harmless.

A job's end is announced in one of two ways, and recorded the same way in both: a handler returns
the announcement and the broker publishes it before acknowledging the message it handled
(`noting_announcements` records it); anything else that ends a job (a cancellation, the
janitor's sweep, a live session's last utterance) calls `announce_end`.
"""

import logging
from collections.abc import Awaitable, Callable

from shared.broker import Publish
from shared.events import Event, JobFailed, TranscriptDone
from shared.jobs.models import Job, JobFailure, JobStatus
from shared.jobs.store import JobStore

log = logging.getLogger(__name__)


def final_event(job: Job) -> Event | None:
    """The event that announces a finished job, or None while it is still under way."""
    if job.status is JobStatus.DONE:
        return TranscriptDone(job_id=job.job_id)
    if job.status is JobStatus.FAILED and job.error is not None:
        return JobFailed(job_id=job.job_id, code=job.error.code, message=job.error.message)
    return None


async def already_handled(jobs: JobStore, job_id: str) -> Event | None:
    """For a message whose job has moved on: announce its end if that was never confirmed
    (the worker that finished it may have died before), else drop the message."""
    job = await jobs.get(job_id)
    if job is None:
        log.warning("job %s: no such job; dropping the message", job_id)
        return None
    if job.announced_at is not None:
        log.info("job %s: already %s and announced; nothing to do", job_id, job.status)
        return None
    log.info("job %s: already %s; nothing to do", job_id, job.status)
    return final_event(job)


async def fail_job(jobs: JobStore, job_id: str, failure: JobFailure) -> Event | None:
    log.info("job %s: failed with %s: %s", job_id, failure.code, failure.message)
    job = await jobs.fail(job_id, failure.code, failure.message)
    if job is None:
        return await already_handled(jobs, job_id)
    return final_event(job)


async def announce_end(jobs: JobStore, publish: Publish, job: Job) -> bool:
    """Publish the event announcing that `job` has ended, and record on it that the broker
    confirmed it; False, with nothing published, while the job is under way. Raises
    BrokerUnavailable: the job then stays unannounced, and the janitor's sweep announces it."""
    announcement = final_event(job)
    if announcement is None:
        return False
    await publish(announcement)
    await _record_announced(jobs, announcement)
    return True


def noting_announcements(jobs: JobStore) -> Callable[[Event], Awaitable[None]]:
    """For `Subscription.published`: record on the job that its end was announced, so later
    redeliveries do not announce it again."""

    async def note(event: Event) -> None:
        await _record_announced(jobs, event)

    return note


async def _record_announced(jobs: JobStore, event: Event) -> None:
    if isinstance(event, (TranscriptDone, JobFailed)):
        await jobs.note_announced(event.job_id)
