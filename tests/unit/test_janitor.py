"""The janitor's sweep as a plain function: it announces every job it ends, even when the first
announcement cannot be published. (Parked messages go through the real broker:
tests/integration/test_janitor_parked.py.)"""

from datetime import timedelta
from pathlib import Path

import pytest

from janitor import handler as janitor
from janitor.handler import Sweeper
from janitor.settings import JanitorSettings
from shared.events import JobFailed, MediaUploaded
from shared.faults import BrokerUnavailable
from shared.jobs.models import JobStatus, now
from shared.media import MediaPaths
from shared.media_store import FolderStore
from tests.fakes import FakeBroker, FakeJobs, a_job

JOB_ID = "b" * 32


async def test_a_job_the_sweep_expired_is_announced_by_a_later_sweep_if_the_first_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(janitor, "UNANNOUNCED_GRACE_SECONDS", 0)
    jobs, broker = FakeJobs(), FakeBroker(failures=1)
    jobs.add(a_job(JOB_ID, deadline_at=now() - timedelta(minutes=1)))
    settings = JanitorSettings(media_dir=tmp_path)
    sweeper = Sweeper(broker, jobs, FolderStore(MediaPaths(tmp_path)), settings)  # type: ignore[arg-type]
    with pytest.raises(BrokerUnavailable):
        await sweeper.sweep()
    assert jobs.jobs[JOB_ID].status is JobStatus.FAILED
    await sweeper.sweep()
    await sweeper.sweep()
    [announcement] = broker.published
    assert isinstance(announcement, JobFailed)
    assert announcement.code == "expired"
    assert jobs.jobs[JOB_ID].announced_at is not None


async def test_the_sweep_sends_on_a_held_job_whose_key_has_room_again(tmp_path: Path) -> None:
    jobs, broker = FakeJobs(), FakeBroker()
    jobs.add(a_job(JOB_ID, JobStatus.QUEUED, owner="billing", held=True))
    settings = JanitorSettings(media_dir=tmp_path, fair_share_per_key=1)
    sweeper = Sweeper(broker, jobs, FolderStore(MediaPaths(tmp_path)), settings)  # type: ignore[arg-type]
    await sweeper.sweep()
    await sweeper.sweep()
    assert broker.published == [MediaUploaded(job_id=JOB_ID)]
    assert not jobs.jobs[JOB_ID].held
    deadline = jobs.jobs[JOB_ID].deadline_at
    assert deadline is not None
    assert deadline > now()


async def test_the_sweep_deletes_jobs_past_their_retention_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    jobs, broker = FakeJobs(), FakeBroker()
    long_ago = now() - timedelta(days=31)
    for job_id, status, ended in (
        ("a" * 32, JobStatus.DONE, long_ago),
        ("c" * 32, JobStatus.DONE, now()),
        ("d" * 32, JobStatus.FAILED, long_ago),
        ("e" * 32, JobStatus.QUEUED, long_ago),
    ):
        job = a_job(job_id, status, announced_at=ended)
        jobs.add(job.model_copy(update={"stage_times": {status: ended}, "created_at": ended}))
    settings = JanitorSettings(media_dir=tmp_path, retention_days=30)
    sweeper = Sweeper(broker, jobs, FolderStore(MediaPaths(tmp_path)), settings)  # type: ignore[arg-type]
    await sweeper.sweep()
    assert sorted(jobs.jobs) == ["c" * 32, "e" * 32]
