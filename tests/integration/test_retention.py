"""What is written per job ages out (STT_RETENTION_DAYS), and what a recognizer reports about
itself goes a day after it was last heard of: TTL indexes on the real wire protocol, which
every service asks for as it starts. (The MongoDB stand-in deletes expired documents as the
collection is next read; MongoDB does it within a minute.)"""

from datetime import timedelta
from typing import Any

from shared.fleet import Fleet, RecognizerEntry
from shared.jobs.models import JobStatus, PieceResult, new_job_id, now
from shared.jobs.options import JobOptions
from shared.jobs.store import JobStore
from shared.settings import CommonSettings
from shared.transcripts import Transcript
from shared.worker import connected

DAY = 24 * 3600


async def ttl_of(jobs: JobStore, collection: str, field: str) -> int | None:
    """The expiry of the TTL index on `field`, None without one."""
    async for index in await jobs.database[collection].list_indexes():
        if dict(index["key"]) == {field: 1}:
            expiry = index.get("expireAfterSeconds")
            return int(expiry) if expiry is not None else None
    return None


async def a_job(jobs: JobStore, settings: CommonSettings) -> str:
    job_id = new_job_id()
    await jobs.create(
        job_id, JobOptions(engine="faster-whisper", language="en"), filename="a.wav",
        size_bytes=10, content_type=None, settings=settings,
    )  # fmt: skip
    return job_id


async def aged(jobs: JobStore, collection: str, query: dict[str, Any], field: str) -> None:
    """Move the date in `field` back past any retention, where there is one."""
    moment = now() - timedelta(days=400)
    dated = {**query, field: {"$exists": True, "$ne": None}}
    await jobs.database[collection].update_many(dated, {"$set": {field: moment}})


async def test_finished_jobs_and_their_pieces_go_after_the_retention_and_others_stay(
    jobs: JobStore, settings: CommonSettings
) -> None:
    await jobs.ensure_indexes(retention_days=30)
    finished, under_way = await a_job(jobs, settings), await a_job(jobs, settings)
    await jobs.advance(finished, JobStatus.DONE, allowed_from=(JobStatus.QUEUED,), text="")
    for job_id in (finished, under_way):
        await jobs.save_piece(
            PieceResult(
                job_id=job_id, index=0, offset_seconds=0, seconds=1, engine_seconds=0.1,
                transcript=Transcript(text="", language="en"), worker="test",
            )
        )  # fmt: skip
    await aged(jobs, "jobs", {"_id": finished}, "finished_at")
    await aged(jobs, "jobs", {"_id": under_way}, "created_at")
    await aged(jobs, "pieces", {"job_id": finished}, "saved_at")

    # Jobs go by the janitor's sweep, not a TTL index (which makes the stand-in purge the
    # collection on every read). (A janitor of another test's stack may sweep it first.)
    assert await ttl_of(jobs, "jobs", "finished_at") is None
    await jobs.delete_retired(30, now())
    assert await jobs.get(finished) is None
    assert await jobs.pieces(finished) == []
    assert await jobs.get(under_way) is not None
    assert len(await jobs.pieces(under_way)) == 1


async def test_a_retention_of_zero_keeps_jobs_and_a_new_one_replaces_the_old(
    jobs: JobStore, settings: CommonSettings
) -> None:
    await jobs.ensure_indexes(retention_days=30)
    await jobs.ensure_indexes(retention_days=7)
    seven = await ttl_of(jobs, "pieces", "saved_at")
    await jobs.ensure_indexes(retention_days=0)
    assert seven == 7 * DAY
    assert await ttl_of(jobs, "pieces", "saved_at") is None
    finished = await a_job(jobs, settings)
    await jobs.advance(finished, JobStatus.DONE, allowed_from=(JobStatus.QUEUED,), text="")
    # As if years had passed; a wider deletion would reach other tests' jobs in the same store.
    assert await jobs.delete_retired(0, now() + timedelta(days=4000)) == 0
    assert await jobs.get(finished) is not None


async def test_a_ttl_index_on_jobs_left_by_an_older_version_is_dropped(jobs: JobStore) -> None:
    await jobs.database["jobs"].create_index([("finished_at", 1)], expireAfterSeconds=DAY)
    await jobs.ensure_indexes(retention_days=30)
    assert await ttl_of(jobs, "jobs", "finished_at") is None


async def test_recognizers_gone_for_a_day_leave_the_fleet(jobs: JobStore) -> None:
    fleet = Fleet(jobs.database, f"test-{new_job_id()[:8]}")
    await fleet.ensure_indexes()
    for worker, seen in (("gone:1", now() - timedelta(days=2)), ("here:2", now())):
        entry = RecognizerEntry(
            worker=worker, host=worker, pid=1, engines=["faster-whisper"], slots=1,
            started_at=seen, seen_at=seen,
        )  # fmt: skip
        await fleet.report(entry)
    assert [entry.worker for entry in await fleet.entries()] == ["here:2"]


async def test_every_service_makes_the_indexes_of_its_queries_as_it_starts(
    settings: CommonSettings,
) -> None:
    async with connected(settings) as (_broker, jobs):
        indexes = await jobs.database["jobs"].list_indexes()
        keys = [tuple(dict(index["key"])) async for index in indexes]
        expiry = await ttl_of(jobs, "jobs", "finished_at")
    assert ("owner", "status", "held", "list_key") in keys
    assert ("engine", "status", "created_at") in keys
    assert ("finished_at",) in keys
    assert expiry is None  # the janitor deletes retired jobs
