"""A job held by the fair share for longer than its deadline and the orphan age: released, it
gets its whole allowance from its release, and its upload survives every sweep while it waits.
The janitor's sweep and the transcoder are called as functions, on the real job store."""

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from janitor.handler import Sweeper
from janitor.settings import JanitorSettings
from shared.events import AudioReady, MediaUploaded
from shared.jobs.models import ErrorCode, JobStatus, new_job_id, now
from shared.jobs.options import JobOptions
from shared.jobs.store import JobStore
from shared.media import MediaPaths
from shared.media_store import FolderStore, GridFSStore, delete_local_orphans, orphan_age_seconds
from shared.settings import CommonSettings
from tests.fakes import FakeBroker, no_fetch
from transcoder.handler import TranscodeHandler
from transcoder.settings import TranscoderSettings

# Of its own: the stand-in shares its collections with every test (the sweep sees all held jobs).
OWNER = f"billing-{uuid.uuid4().hex[:8]}"
TWO_DAYS = timedelta(days=2)


async def a_job_of(jobs: JobStore, settings: CommonSettings, *, held: bool) -> str:
    job_id = new_job_id()
    await jobs.create(
        job_id, JobOptions(engine="faster-whisper", language="en"), filename="a.wav",
        size_bytes=10, content_type=None, settings=settings, owner=OWNER, held=held,
    )  # fmt: skip
    return job_id


async def test_a_job_held_past_both_limits_keeps_its_upload_and_its_whole_allowance(
    jobs: JobStore, settings: CommonSettings, tmp_path: Path, clips: dict[str, Path]
) -> None:
    janitor_settings = JanitorSettings(**{**settings.model_dump(), "fair_share_per_key": 1})
    paths = MediaPaths(settings.media_dir)
    paths.create_folders()
    store, broker = FolderStore(paths), FakeBroker()
    ahead = await a_job_of(jobs, settings, held=False)
    held = await a_job_of(jobs, settings, held=True)
    # Uploaded two days ago, held ever since: older than its deadline and than any orphan.
    long_ago = now() - TWO_DAYS
    await jobs.database["jobs"].update_one(
        {"_id": held},
        {"$set": {"created_at": long_ago, "deadline_at": long_ago + timedelta(hours=1)}},
    )
    upload = paths.upload(held)
    upload.write_bytes(clips["wav"].read_bytes())
    os.utime(upload, (long_ago.timestamp(), long_ago.timestamp()))
    sweeper = Sweeper(broker, jobs, store, janitor_settings)  # type: ignore[arg-type]

    await sweeper.sweep()
    deleted = await delete_local_orphans(paths, jobs, orphan_age_seconds(settings))
    still_held = await jobs.get(held)
    await jobs.advance(ahead, JobStatus.DONE, allowed_from=(JobStatus.QUEUED,), text="")
    await sweeper.sweep()  # its key has room again: released
    transcoder_settings = TranscoderSettings(**settings.model_dump())
    published = FakeBroker()
    with ThreadPoolExecutor(1) as executor:
        transcode = TranscodeHandler(
            jobs, store, executor, published.publish, transcoder_settings, no_fetch
        )
        await transcode(MediaUploaded(job_id=held))
    await sweeper.sweep()
    job = await jobs.get(held)

    assert deleted == 0
    assert still_held is not None
    assert still_held.held
    assert still_held.status is JobStatus.QUEUED
    # The stand-in may hold other tests' jobs too: only this one's events count.
    assert [event for event in broker.published if event.job_id == held] == [
        MediaUploaded(job_id=held)
    ]
    assert [type(event) for event in published.published] == [AudioReady]
    assert job is not None
    assert job.status is JobStatus.TRANSCODING
    assert job.released_at is not None
    assert job.deadline_at is not None
    assert job.duration_seconds is not None
    allowance = settings.job_deadline_seconds + job.duration_seconds
    given = (job.deadline_at - job.released_at).total_seconds()
    assert given == pytest.approx(allowance, abs=0.01)
    assert held not in await jobs.overdue(now())


async def test_files_go_by_their_jobs_state_not_by_age_alone(
    jobs: JobStore, settings: CommonSettings
) -> None:
    paths = MediaPaths(settings.media_dir)
    paths.create_folders()
    under_way = await a_job_of(jobs, settings, held=True)
    finished = await a_job_of(jobs, settings, held=False)
    await jobs.fail(finished, ErrorCode.CANCELLED, "Cancelled.")
    gone, recent = new_job_id(), new_job_id()
    old_files = [
        paths.upload(under_way),
        paths.upload(finished),
        paths.root / "fetched" / f"{finished}-piece-00001.1a2b3c4d",
        paths.audio_folder(gone),
    ]
    (paths.root / "fetched").mkdir(exist_ok=True)
    paths.audio_folder(gone).mkdir()
    for path in old_files[:3]:
        path.write_bytes(b"x")
    long_ago = (now() - TWO_DAYS).timestamp()
    for path in old_files:
        os.utime(path, (long_ago, long_ago))
    paths.upload(recent).write_bytes(b"x")  # an upload whose job is being created

    deleted = await delete_local_orphans(paths, jobs, orphan_age_seconds(settings))

    assert deleted == 3
    assert [path.exists() for path in old_files] == [True, False, False, False]
    assert paths.upload(recent).exists()


async def test_stored_files_go_by_their_jobs_state_not_by_age_alone(
    jobs: JobStore, settings: CommonSettings
) -> None:
    store = GridFSStore(jobs.database, MediaPaths(settings.media_dir))
    store.local.create_folders()
    under_way = await a_job_of(jobs, settings, held=True)
    finished = await a_job_of(jobs, settings, held=False)
    await jobs.fail(finished, ErrorCode.CANCELLED, "Cancelled.")
    for job_id in (under_way, finished):
        store.local.upload(job_id).write_bytes(b"x")
        await store.keep_upload(job_id)

    deleted = await store.delete_orphans(jobs, now() + timedelta(seconds=1))

    # The stand-in shares GridFS between tests' databases: others' finished files may go too.
    assert deleted >= 1
    assert await store.has_upload(under_way)
    assert not await store.has_upload(finished)
