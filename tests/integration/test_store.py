"""The job store over the MongoDB wire protocol."""

from shared.jobs import ErrorCode, JobStatus, JobStore, new_job_id


async def new_job(jobs: JobStore) -> str:
    job_id = new_job_id()
    await jobs.create(
        job_id, filename="a.mp3", size_bytes=10, content_type="audio/mpeg", language="en",
        engine="sphinx",
    )  # fmt: skip
    return job_id


async def test_a_created_job_reads_back_queued(jobs: JobStore) -> None:
    job_id = await new_job(jobs)
    job = await jobs.get(job_id)
    assert job is not None
    assert job.status is JobStatus.QUEUED
    assert (job.filename, job.size_bytes, job.engine) == ("a.mp3", 10, "sphinx")
    assert job.created_at.tzinfo is not None
    assert set(job.stage_times) == {JobStatus.QUEUED}
    assert await jobs.get(new_job_id()) is None


async def test_a_job_moves_forward_and_records_each_stage(jobs: JobStore) -> None:
    job_id = await new_job(jobs)
    moved = await jobs.advance(job_id, JobStatus.TRANSCODING, allowed_from=(JobStatus.QUEUED,))
    assert moved is not None
    assert moved.status is JobStatus.TRANSCODING
    done = await jobs.advance(
        job_id, JobStatus.DONE, allowed_from=(JobStatus.TRANSCODING,), text="hello"
    )
    assert done is not None
    assert done.text == "hello"
    assert set(done.stage_times) == {JobStatus.QUEUED, JobStatus.TRANSCODING, JobStatus.DONE}
    assert done.stage_times[JobStatus.DONE] >= done.stage_times[JobStatus.QUEUED]


async def test_a_redelivery_never_moves_a_job_backwards(jobs: JobStore) -> None:
    job_id = await new_job(jobs)
    await jobs.advance(job_id, JobStatus.RECOGNIZING, allowed_from=(JobStatus.QUEUED,))
    again = await jobs.advance(job_id, JobStatus.TRANSCODING, allowed_from=(JobStatus.QUEUED,))
    assert again is None
    job = await jobs.get(job_id)
    assert job is not None
    assert job.status is JobStatus.RECOGNIZING


async def test_only_an_unfinished_job_can_fail(jobs: JobStore) -> None:
    job_id = await new_job(jobs)
    failed = await jobs.fail(job_id, ErrorCode.NO_AUDIO, "No audio track.")
    assert failed is not None
    assert failed.error is not None
    assert (failed.status, failed.error.code) == (JobStatus.FAILED, "no_audio")
    assert await jobs.fail(job_id, ErrorCode.TIMEOUT, "again") is None
    assert await jobs.advance(job_id, JobStatus.DONE, allowed_from=(JobStatus.RECOGNIZING,)) is None
    job = await jobs.get(job_id)
    assert job is not None
    assert job.error is not None
    assert job.error.code == "no_audio"


async def test_each_callback_attempt_is_counted_with_its_outcome(jobs: JobStore) -> None:
    job_id = new_job_id()
    await jobs.create(
        job_id, filename=None, size_bytes=1, content_type=None, language="en", engine="sphinx",
        callback_url="https://example.com/hook",
    )  # fmt: skip
    await jobs.record_callback(job_id, delivered=False, error="the receiver answered 503")
    failed_once = await jobs.get(job_id)
    await jobs.record_callback(job_id, delivered=True)
    delivered = await jobs.get(job_id)
    assert failed_once is not None
    assert failed_once.callback is not None
    assert (failed_once.callback.attempts, failed_once.callback.error) == (
        1,
        "the receiver answered 503",
    )
    assert failed_once.callback.delivered_at is None
    assert delivered is not None
    assert delivered.callback is not None
    assert delivered.callback.attempts == 2
    assert delivered.callback.delivered_at is not None
    assert delivered.callback.error is None
    assert not delivered.callback.gave_up
