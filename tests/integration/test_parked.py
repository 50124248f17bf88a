"""The janitor's handling of parked messages, over the real wire protocol."""

from dataclasses import dataclass, field
from typing import Any, cast

from aio_pika.abc import AbstractIncomingMessage

from janitor.handler import ParkedHandler
from shared.events import JobFailed, MediaUploaded
from shared.jobs.models import ErrorCode, JobStatus
from shared.jobs.store import JobStore
from shared.messages import RETRY_HEADER, current_message
from tests.integration.test_store import new_job


@dataclass
class ParkedMessage:
    """The headers RabbitMQ puts on a dead-lettered message: all the handler reads of it."""

    headers: dict[str, Any] = field(default_factory=dict)


def parked(reason: str, retries: int = 0) -> None:
    headers: dict[str, Any] = {"x-death": [{"reason": reason}]}
    if retries:
        headers[RETRY_HEADER] = retries
    current_message.set(cast(AbstractIncomingMessage, ParkedMessage(headers)))


async def test_a_job_whose_message_kept_crashing_fails_with_processing_error(
    jobs: JobStore,
) -> None:
    job_id = await new_job(jobs)
    parked("delivery_limit")
    announced = await ParkedHandler(jobs, announces=True)(MediaUploaded(job_id=job_id))
    job = await jobs.get(job_id)
    assert job is not None
    assert job.error is not None
    assert (job.status, job.error.code) == (JobStatus.FAILED, ErrorCode.PROCESSING_ERROR)
    assert isinstance(announced, JobFailed)


async def test_a_job_whose_retries_ran_out_fails_with_retries_exhausted(jobs: JobStore) -> None:
    job_id = await new_job(jobs)
    parked("rejected", retries=2)
    await ParkedHandler(jobs, announces=True)(MediaUploaded(job_id=job_id))
    job = await jobs.get(job_id)
    assert job is not None
    assert job.error is not None
    assert job.error.code == ErrorCode.RETRIES_EXHAUSTED


async def test_a_parked_message_of_a_finished_announced_job_is_dropped(jobs: JobStore) -> None:
    job_id = await new_job(jobs)
    await jobs.advance(job_id, JobStatus.DONE, allowed_from=(JobStatus.QUEUED,), text="hi")
    await jobs.note_announced(job_id)
    parked("delivery_limit")
    announced = await ParkedHandler(jobs, announces=True)(MediaUploaded(job_id=job_id))
    job = await jobs.get(job_id)
    assert announced is None
    assert job is not None
    assert job.status is JobStatus.DONE
