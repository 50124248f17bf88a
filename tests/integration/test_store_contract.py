"""One contract, two implementations: the job store's calls that handlers and routes make, run
against the real JobStore (over the MongoDB wire protocol) and against tests.fakes.FakeJobs, the
stand-in the fast tier uses, so the stand-in cannot drift from what it stands in for.

The MongoDB stand-in keeps one set of collections whatever the database's name, so each test
gives its jobs an owner of its own and looks only at those."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from shared.jobs.listing import Listing, list_key
from shared.jobs.models import ErrorCode, JobStatus, Progress, new_job_id, now
from shared.jobs.options import JobOptions
from shared.jobs.store import JobStore
from shared.settings import CommonSettings
from tests.fakes import FakeJobs

SETTINGS = CommonSettings(_env_file=None)


@pytest.fixture(params=["mongodb", "fake"])
async def store(request: pytest.FixtureRequest, mongodb_url: str) -> AsyncIterator[Any]:
    if request.param == "fake":
        yield FakeJobs()
        return
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        yield JobStore(client, f"contract_{uuid.uuid4().hex[:10]}")
    finally:
        await client.close()


@pytest.fixture
def owner() -> str:
    return f"key-{uuid.uuid4().hex[:10]}"


async def new_job(store: Any, engine: str = "sphinx", **fields: Any) -> str:
    job_id = new_job_id()
    values: dict[str, Any] = {
        "filename": "a.mp3",
        "size_bytes": 10,
        "content_type": "audio/mpeg",
        "settings": SETTINGS,
        **fields,
    }
    await store.create(job_id, JobOptions(engine=engine, language="en"), **values)
    return job_id


async def test_a_job_is_created_queued_and_moves_only_from_where_it_may(store: Any) -> None:
    job_id = await new_job(store, owner="billing")
    job = await store.get(job_id)
    assert (job.status, job.owner, job.engine) == (JobStatus.QUEUED, "billing", "sphinx")
    assert await store.get(new_job_id()) is None
    assert (
        await store.advance(job_id, JobStatus.DONE, allowed_from=(JobStatus.RECOGNIZING,)) is None
    )
    moved = await store.advance(job_id, JobStatus.TRANSCODING, allowed_from=(JobStatus.QUEUED,))
    assert moved.status is JobStatus.TRANSCODING
    failed = await store.fail(job_id, ErrorCode.NO_AUDIO, "none")
    assert (failed.status, failed.error.code) == (JobStatus.FAILED, "no_audio")
    assert await store.fail(job_id, ErrorCode.NO_AUDIO, "again") is None


async def test_overdue_counts_unfinished_jobs_past_their_deadline_but_not_held_ones(
    store: Any,
) -> None:
    past = now() - timedelta(seconds=1)
    overdue, on_time, finished, held = [await new_job(store) for _ in range(4)]
    for job_id in (overdue, finished, held):
        await store.plan_pieces(job_id, pieces=1, audio_seconds=1, deadline_at=past)
    await store.fail(finished, ErrorCode.NO_AUDIO, "none")
    held_job = await new_job(store, owner="billing", held=True)
    await store.plan_pieces(held_job, pieces=1, audio_seconds=1, deadline_at=past)
    found = await store.overdue(now())
    assert overdue in found
    assert {on_time, finished, held_job}.isdisjoint(found)


async def test_a_page_is_newest_first_within_its_filters_and_date_bounds(
    store: Any, owner: str
) -> None:
    engines = ("sphinx", "faster-whisper", "sphinx", "faster-whisper")
    jobs = [await store.get(await new_job(store, owner=owner, engine=e)) for e in engines]
    newest_first = [job.job_id for job in sorted(jobs, key=list_key, reverse=True)]
    middle = sorted(jobs, key=list_key)[1].created_at
    mine = Listing(owner=owner)

    async def listed(listing: Listing, limit: int = 10) -> list[str]:
        return [job.job_id for job in await store.page(listing, limit)]

    assert await listed(mine) == newest_first
    assert await listed(mine, 2) == newest_first[:2]
    whisper = await listed(replace(mine, engine="faster-whisper"))
    assert whisper == [
        job_id for job_id in newest_first if job_id in (jobs[1].job_id, jobs[3].job_id)
    ]
    assert set(await listed(replace(mine, created_after=middle))) <= set(newest_first[:3])
    assert set(await listed(replace(mine, created_before=middle))) <= {newest_first[-1]}
    after_two = await listed(replace(mine, after=list_key(await store.get(newest_first[1]))))
    assert after_two == newest_first[2:]


async def test_a_piece_counts_once_however_often_it_is_delivered(store: Any) -> None:
    job_id = await new_job(store)
    await store.plan_pieces(job_id, pieces=2, audio_seconds=20.0, deadline_at=now())
    first = await store.count_piece(job_id, 0, 10.0)
    again = await store.count_piece(job_id, 0, 10.0)
    last = await store.count_piece(job_id, 1, 10.0)
    assert first.progress.pieces_done == 1
    assert again is None
    assert (last.progress.pieces_done, last.progress.audio_seconds_done) == (2, 20.0)
    assert await store.is_recognized(job_id, 1)


async def test_a_finished_job_has_no_time_left_to_wait(store: Any) -> None:
    job_id = await new_job(store)
    await store.advance(job_id, JobStatus.TRANSCODING, allowed_from=(JobStatus.QUEUED,))
    await store.plan_pieces(job_id, pieces=2, audio_seconds=20.0, deadline_at=now())
    await store.advance(job_id, JobStatus.RECOGNIZING, allowed_from=(JobStatus.TRANSCODING,))
    await store.count_piece(job_id, 0, 10.0)
    await store.set_eta(job_id, 12.5)
    waiting = await store.get(job_id)
    await store.count_piece(job_id, 1, 10.0)
    done = await store.advance(job_id, JobStatus.DONE, allowed_from=(JobStatus.RECOGNIZING,))
    assert waiting.progress.eta_seconds == 12.5
    assert done.progress.eta_seconds is None
    assert (await store.get(job_id)).progress.eta_seconds is None


async def test_pieces_recognized_before_the_total_is_known_count_once_it_is(store: Any) -> None:
    """A recording handed out while it is converted: its progress starts without totals,
    pieces are counted as they come, and the totals are set once, by the first run."""
    job_id = await new_job(store)
    await store.start_pieces(job_id)
    early = await store.count_piece(job_id, 1, 10.0)
    await store.start_pieces(job_id)  # a transcoder run again
    await store.plan_pieces(
        job_id, pieces=3, audio_seconds=25.0, deadline_at=now(), conversion_seconds=2.0
    )
    await store.plan_pieces(job_id, pieces=9, audio_seconds=90.0, deadline_at=now())
    await store.count_piece(job_id, 0, 10.0)
    before_last = await store.get(job_id)
    last = await store.count_piece(job_id, 2, 5.0)
    assert (early.progress.pieces_done, early.progress.pieces_total) == (1, None)
    assert not early.progress.complete
    assert (before_last.progress.pieces_done, before_last.progress.pieces_total) == (2, 3)
    assert not before_last.progress.complete
    assert (last.progress.pieces_done, last.progress.audio_seconds_done) == (3, 25.0)
    assert last.progress.complete
    assert (last.duration_seconds, last.conversion_seconds) == (25.0, 2.0)


async def test_the_totals_leave_the_estimate_made_while_converting(store: Any) -> None:
    job_id = await new_job(store)
    await store.start_pieces(job_id)
    await store.count_piece(job_id, 0, 10.0)
    await store.set_eta(job_id, 40.0)
    await store.plan_pieces(job_id, pieces=4, audio_seconds=40.0, deadline_at=now())
    progress = (await store.get(job_id)).progress
    assert (progress.pieces_done, progress.pieces_total, progress.eta_seconds) == (1, 4, 40.0)


async def test_a_recording_of_one_piece_gets_its_deadline_and_length_but_no_progress(
    store: Any,
) -> None:
    """It is recognized whole, never counted as a piece: a progress would stay at 0 of 1."""
    job_id = await new_job(store)
    deadline = now() + timedelta(hours=2)
    await store.plan_pieces(job_id, pieces=1, audio_seconds=8.0, deadline_at=deadline)
    job = await store.get(job_id)
    assert job.progress is None
    assert job.duration_seconds == 8.0
    assert abs((job.deadline_at - deadline).total_seconds()) < 1


async def test_the_slots_a_recording_is_cut_for_are_claimed_once(store: Any) -> None:
    job_id = await new_job(store)
    assert await store.claim_piece_slots(job_id, 3) == 3
    assert await store.claim_piece_slots(job_id, 1) == 3


async def test_jobs_with_media_still_to_fetch_are_counted_per_owner(store: Any, owner: str) -> None:
    url = "https://media.example/talk.mp3"
    waiting = await new_job(store, owner=owner, source_url=url, size_bytes=0)
    await new_job(store, owner=owner, source_url=url, size_bytes=4096)  # fetched already
    await new_job(store, owner=owner)  # uploaded
    await new_job(store, owner=f"{owner}-other", source_url=url, size_bytes=0)
    assert await store.count_unfetched(owner) == 1
    await store.fail(waiting, ErrorCode.FETCH_FAILED, "gone")
    assert await store.count_unfetched(owner) == 0


async def test_held_jobs_go_on_oldest_first_and_only_once(store: Any, owner: str) -> None:
    await new_job(store, owner=owner)
    held = [await store.get(await new_job(store, owner=owner, held=True)) for _ in range(2)]
    oldest = min(held, key=list_key).job_id
    assert await store.count_dispatched(owner) == 1
    assert await store.count_unfinished(owner) == 3
    assert owner in await store.owners_holding()
    assert (await store.next_held(owner)).job_id == oldest
    waiting = await store.get(oldest)
    assert await store.release(waiting, SETTINGS)
    assert not await store.release(waiting, SETTINGS)
    released = await store.get(oldest)
    assert released.deadline_at > waiting.deadline_at
    assert await store.count_dispatched(owner) == 2
    await store.hold_again(oldest)
    assert (await store.next_held(owner)).job_id == oldest


async def test_a_live_session_counts_in_its_keys_share_by_its_utterances_and_pass_in_flight(
    store: Any, owner: str
) -> None:
    await new_job(store, owner=owner)
    session = await new_job(store, owner=owner)
    await store.advance(
        session,
        JobStatus.RECOGNIZING,
        allowed_from=(JobStatus.QUEUED,),
        live=True,
        progress=Progress(pieces_total=0, audio_seconds_total=0.0).model_dump(),
    )
    assert await store.count_dispatched(owner) == 1  # an idle session takes no slot
    await store.advance(
        session,
        JobStatus.RECOGNIZING,
        allowed_from=(JobStatus.RECOGNIZING,),
        progress=Progress(pieces_total=3, audio_seconds_total=3.0).model_dump(),
    )
    await store.count_piece(session, 0, 1.0)
    assert await store.count_dispatched(owner) == 1 + 2
    # An interim pass out takes a slot too, until it is answered or its time is up.
    await store.note_interim_pass(session, now() + timedelta(seconds=30))
    assert await store.count_dispatched(owner) == 1 + 2 + 1
    await store.note_interim_pass(session, None)
    assert await store.count_dispatched(owner) == 1 + 2
    await store.note_interim_pass(session, now() - timedelta(seconds=1))
    assert await store.count_dispatched(owner) == 1 + 2


async def test_a_finished_job_deleted_before_its_callback_is_kept_for_it(store: Any) -> None:
    owing, settled = [
        await new_job(store, callback_url="https://example.com/hook") for _ in range(2)
    ]
    for job_id in (owing, settled):
        await store.advance(job_id, JobStatus.DONE, allowed_from=(JobStatus.QUEUED,), text="hi")
    await store.record_callback(settled, delivered=True)
    unfinished = await new_job(store, callback_url="https://example.com/hook")
    for job_id in (owing, settled, unfinished):
        await store.delete(job_id)
        assert await store.get(job_id) is None
    kept = await store.owed_callback(owing)
    assert (kept.text, kept.callback.url) == ("hi", "https://example.com/hook")
    assert await store.owed_callback(settled) is None
    assert await store.owed_callback(unfinished) is None
    await store.record_callback(owing, delivered=False, error="the receiver answered 503")
    assert (await store.owed_callback(owing)).callback.attempts == 1
    await store.record_callback(owing, delivered=True)
    assert await store.owed_callback(owing) is None


async def test_an_idempotency_key_belongs_to_the_first_request_until_released(
    store: Any,
) -> None:
    key, first, second = f"billing:{new_job_id()}", new_job_id(), new_job_id()
    assert await store.claim_request(key, first) is None
    assert await store.claim_request(key, second) == first
    await store.release_request(key, second)
    assert await store.claim_request(key, second) == first
    await store.release_request(key, first)
    assert await store.claim_request(key, second) is None


async def test_a_deleted_job_releases_its_idempotency_key(store: Any) -> None:
    key = f"billing:{new_job_id()}"
    deleted = await new_job(store)
    assert await store.claim_request(key, deleted) is None
    await store.delete(deleted)
    retried = new_job_id()
    assert await store.claim_request(key, retried) is None
    assert await store.claim_request(key, new_job_id()) == retried


async def test_queued_audio_is_what_is_left_of_unfinished_jobs(store: Any, owner: str) -> None:
    await new_job(store, duration_seconds=30.0, owner=owner)
    halfway = await new_job(store, duration_seconds=100.0, owner=owner)
    finished = await new_job(store, duration_seconds=50.0, owner=owner)
    await store.plan_pieces(halfway, pieces=2, audio_seconds=100.0, deadline_at=now())
    await store.count_piece(halfway, 0, 60.0)
    await store.advance(finished, JobStatus.DONE, allowed_from=(JobStatus.QUEUED,), text="")
    assert await store.queued_audio_seconds(owner) == pytest.approx(30.0 + 40.0)


async def test_an_ended_job_is_unannounced_until_noted(store: Any) -> None:
    job_id = await new_job(store)
    await store.fail(job_id, ErrorCode.NO_AUDIO, "none")
    later = now() + timedelta(seconds=1)

    async def unannounced() -> bool:
        return job_id in [job.job_id for job in await store.unannounced(later)]

    assert await unannounced()
    await store.note_announced(job_id)
    assert not await unannounced()


async def test_recognition_starts_once_from_transcoding_and_not_after_the_end(store: Any) -> None:
    job_id = await new_job(store)
    assert await store.start_recognizing(job_id) == (None, False)  # still queued
    await store.advance(job_id, JobStatus.TRANSCODING, allowed_from=(JobStatus.QUEUED,))
    first, moved = await store.start_recognizing(job_id, duration_seconds=4.0)
    again, moved_again = await store.start_recognizing(job_id)
    assert (first.status, first.duration_seconds, moved) == (JobStatus.RECOGNIZING, 4.0, True)
    assert (again.status, moved_again) == (JobStatus.RECOGNIZING, False)
    await store.fail(job_id, ErrorCode.NO_AUDIO, "none")
    assert await store.start_recognizing(job_id) == (None, False)
