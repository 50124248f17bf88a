from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.events import JobFailed, MediaUploaded, TranscriptDone
from shared.jobs.models import Job, JobError, JobStatus
from shared.pipeline import final_event


def job(status: JobStatus, error: JobError | None = None) -> Job:
    moment = datetime.now(UTC)
    return Job(
        job_id="a" * 32, status=status, size_bytes=1, language="en", engine="sphinx",
        created_at=moment, updated_at=moment, error=error,
    )  # fmt: skip


def test_finished_jobs_are_announced_again() -> None:
    assert final_event(job(JobStatus.DONE)) == TranscriptDone(job_id="a" * 32)
    failed = job(JobStatus.FAILED, JobError(code="no_audio", message="none"))
    assert final_event(failed) == JobFailed(job_id="a" * 32, code="no_audio", message="none")


def test_jobs_under_way_are_not() -> None:
    for status in (JobStatus.QUEUED, JobStatus.TRANSCODING, JobStatus.RECOGNIZING):
        assert final_event(job(status)) is None


def test_events_ignore_fields_they_do_not_know() -> None:
    newer = b'{"job_id": "%s", "schema_version": 2, "priority": "high"}' % (b"a" * 32)
    assert TranscriptDone.model_validate_json(newer) == TranscriptDone(
        job_id="a" * 32, schema_version=2
    )


def test_an_event_with_a_crafted_job_id_does_not_parse() -> None:
    for crafted in ("../../etc/passwd", "a" * 31, "A" * 32, "a" * 32 + "/x", ""):
        with pytest.raises(ValidationError):
            MediaUploaded(job_id=crafted)
