"""The janitor's handlers as plain functions: parked messages and the deadline sweep announce
every job they end, even when the first announcement cannot be published."""

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from janitor import handler as janitor
from janitor.handler import ParkedHandler, Sweeper
from janitor.settings import JanitorSettings
from shared.broker import current_message
from shared.events import Event, JobFailed, MediaUploaded, TranscriptDone
from shared.faults import BrokerUnavailable
from shared.jobs import JobStatus, now
from shared.media import MediaPaths
from shared.pipeline import noting_announcements
from shared.store import FolderStore
from tests.fakes import FakeBroker, FakeJobs, a_job

JOB_ID = "b" * 32


async def handled_as_the_broker_would(
    handler: ParkedHandler, jobs: FakeJobs, broker: FakeBroker, event: Event
) -> Event | None:
    """What Broker._process does around a handler: publish what it returns, then note it."""
    current_message.set(SimpleNamespace(headers={}))  # type: ignore[arg-type]
    next_event = await handler(event)
    if next_event is not None:
        await broker.publish(next_event)
        await noting_announcements(jobs)(next_event)  # type: ignore[arg-type]
    return next_event


async def test_a_parked_job_is_announced_even_when_the_first_publish_fails() -> None:
    jobs, broker = FakeJobs(), FakeBroker(failures=1)
    jobs.add(a_job(JOB_ID))
    parked = ParkedHandler(jobs, announces=True)  # type: ignore[arg-type]
    message = TranscriptDone(job_id=JOB_ID)
    with pytest.raises(BrokerUnavailable):  # the broker retries the parked message later
        await handled_as_the_broker_would(parked, jobs, broker, message)
    assert jobs.jobs[JOB_ID].status is JobStatus.FAILED
    assert jobs.jobs[JOB_ID].announced_at is None
    again = await handled_as_the_broker_would(parked, jobs, broker, message)
    third = await handled_as_the_broker_would(parked, jobs, broker, message)
    assert isinstance(again, JobFailed)
    assert [type(event) for event in broker.published] == [JobFailed]
    assert jobs.jobs[JOB_ID].announced_at is not None
    assert third is None


async def test_a_parked_message_of_a_finished_job_queue_is_dropped() -> None:
    jobs, broker = FakeJobs(), FakeBroker()
    jobs.add(a_job(JOB_ID, JobStatus.DONE))
    parked = ParkedHandler(jobs, announces=False)  # type: ignore[arg-type]
    assert (
        await handled_as_the_broker_would(parked, jobs, broker, TranscriptDone(job_id=JOB_ID))
        is None
    )
    assert broker.published == []


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
