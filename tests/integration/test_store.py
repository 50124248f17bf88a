"""The job store over the MongoDB wire protocol."""

import asyncio
from datetime import timedelta

import pytest

from shared.jobs.listing import Listing
from shared.jobs.models import (
    RUN_RESULTS,
    ErrorCode,
    JobStatus,
    PieceResult,
    new_job_id,
    now,
    owes_callback,
)
from shared.jobs.options import JobOptions, SpeakerLabels
from shared.jobs.store import JobStore
from shared.settings import CommonSettings
from shared.transcripts import Segment, Transcript

SETTINGS = CommonSettings()


async def new_job(jobs: JobStore, owner: str | None = None, held: bool = False) -> str:
    job_id = new_job_id()
    await jobs.create(
        job_id, JobOptions(engine="sphinx", language="en"), filename="a.mp3", size_bytes=10,
        content_type="audio/mpeg", settings=SETTINGS, owner=owner, held=held,
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


async def test_a_job_given_by_url_keeps_its_address_and_gets_its_size_once_fetched(
    jobs: JobStore,
) -> None:
    job_id = new_job_id()
    url = "https://media.example.com/ep%2012.mp3?signature=abc"
    await jobs.create(
        job_id, JobOptions(engine="sphinx", language="en"), filename="ep 12.mp3", size_bytes=0,
        content_type=None, settings=SETTINGS, source_url=url,
    )  # fmt: skip
    await jobs.advance(job_id, JobStatus.TRANSCODING, allowed_from=(JobStatus.QUEUED,))
    fetched = await jobs.advance(
        job_id,
        JobStatus.TRANSCODING,
        allowed_from=(JobStatus.TRANSCODING,),
        size_bytes=39959,
        content_type="audio/mpeg",
    )
    assert fetched is not None
    assert (fetched.source_url, fetched.size_bytes, fetched.content_type) == (
        url,
        39959,
        "audio/mpeg",
    )


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
        job_id, JobOptions(engine="sphinx", language="en"), filename=None, size_bytes=1,
        content_type=None, callback_url="https://example.com/hook", settings=SETTINGS,
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


async def test_a_replayed_job_owes_its_callback_again(jobs: JobStore) -> None:
    job_id = new_job_id()
    await jobs.create(
        job_id, JobOptions(engine="sphinx", language="en"), filename=None, size_bytes=1,
        content_type=None, callback_url="https://example.com/hook", settings=SETTINGS,
    )  # fmt: skip
    await jobs.fail(job_id, ErrorCode.PROCESSING_ERROR, "a message kept crashing its consumer")
    await jobs.record_callback(job_id, delivered=True)
    replayed = await jobs.reopen(job_id, (ErrorCode.PROCESSING_ERROR,), SETTINGS)
    stored = await jobs.get(job_id)
    assert replayed is not None
    assert stored is not None
    assert replayed.callback == stored.callback
    assert stored.callback is not None
    assert (stored.callback.url, stored.callback.attempts) == ("https://example.com/hook", 0)
    assert stored.callback.delivered_at is None
    ended_anew = await jobs.fail(job_id, ErrorCode.PROCESSING_ERROR, "again")
    assert ended_anew is not None
    assert owes_callback(ended_anew)


async def test_a_job_keeps_its_options_flat_under_their_own_names(jobs: JobStore) -> None:
    job_id = new_job_id()
    options = JobOptions(
        engine="whisper-base",
        language="de",
        prompt="A call.",
        temperature=0.2,
        task="translate",
        hotwords=["Zarvokian", "Quillmore"],
        speaker_labels=SpeakerLabels(max_speakers=3),
    )
    await jobs.create(
        job_id, options, filename="a.mp3", size_bytes=10, content_type=None, settings=SETTINGS
    )
    document = await jobs.database["jobs"].find_one({"_id": job_id})
    stored = await jobs.get(job_id)
    assert document is not None
    assert stored is not None
    assert "options" not in document
    assert {name: document[name] for name in JobOptions.model_fields} == options.model_dump()
    assert stored.options == options


# What a replay sets afresh rather than back to a new job's (the job is queued again, now), and
# what its media still says.
SET_BY_REOPEN = {"status", "updated_at", "deadline_at", "released_at", "stage_times"}
OF_THE_MEDIA = {"duration_seconds"}


async def test_a_replayed_job_keeps_nothing_its_run_produced(jobs: JobStore) -> None:
    new = await new_job(jobs)
    fresh = await jobs.database["jobs"].find_one({"_id": new})
    assert fresh is not None
    job_id = await recognizing(jobs, pieces=2)
    await jobs.claim_piece_slots(job_id, 2)
    await jobs.claim_language(job_id, "en", 0.9)
    await jobs.count_piece(job_id, 0, 10.0)
    await jobs.audio_ready(job_id)
    timings = {"conversion_seconds": 1.5, "recognition_seconds": 2.5, "recovered_seconds": 3.0}
    await jobs.advance(
        job_id, JobStatus.RECOGNIZING, allowed_from=(JobStatus.TRANSCODING,), **timings
    )
    await jobs.fail(job_id, ErrorCode.PROCESSING_ERROR, "a message kept crashing its consumer")
    await jobs.note_announced(job_id)
    assert await jobs.reopen(job_id, (ErrorCode.PROCESSING_ERROR,), SETTINGS) is not None
    document = await jobs.database["jobs"].find_one({"_id": job_id})
    assert document is not None
    assert {name: document[name] for name in RUN_RESULTS} == RUN_RESULTS
    assert document["status"] == "queued"
    # Every field the run wrote is back as a new job has it (the list misses none of them).
    kept = {
        name: value
        for name, value in document.items()
        if name not in SET_BY_REOPEN | OF_THE_MEDIA | {"_id", "created_at", "list_key"}
        and value != fresh.get(name, RUN_RESULTS.get(name))
    }
    assert kept == {}


async def recognizing(jobs: JobStore, pieces: int) -> str:
    job_id = await new_job(jobs)
    await jobs.advance(job_id, JobStatus.TRANSCODING, allowed_from=(JobStatus.QUEUED,))
    deadline = now() + timedelta(hours=2)
    await jobs.plan_pieces(job_id, pieces=pieces, audio_seconds=pieces * 10.0, deadline_at=deadline)
    return job_id


async def test_the_first_piece_to_start_moves_the_job_and_says_so(jobs: JobStore) -> None:
    job_id = await recognizing(jobs, pieces=3)
    first, moved = await jobs.start_recognizing(job_id, duration_seconds=30.0)
    second, moved_again = await jobs.start_recognizing(job_id, duration_seconds=30.0)
    assert (moved, moved_again) == (True, False)
    assert first is not None
    assert second is not None
    assert second.stage_times[JobStatus.RECOGNIZING] == first.stage_times[JobStatus.RECOGNIZING]


async def test_a_piece_counts_once_however_often_it_is_delivered(jobs: JobStore) -> None:
    job_id = await recognizing(jobs, pieces=3)
    counted = await jobs.count_piece(job_id, 1, 10.0)
    again = await jobs.count_piece(job_id, 1, 10.0)
    assert counted is not None
    assert counted.progress is not None
    assert (counted.progress.pieces_done, counted.progress.audio_seconds_done) == (1, 10.0)
    assert again is None
    assert await jobs.is_recognized(job_id, 1)
    assert not await jobs.is_recognized(job_id, 0)


async def test_of_two_last_pieces_counted_at_once_exactly_one_completes_the_set(
    jobs: JobStore,
) -> None:
    for _ in range(5):
        job_id = await recognizing(jobs, pieces=3)
        await jobs.count_piece(job_id, 0, 10.0)
        results = await asyncio.gather(
            jobs.count_piece(job_id, 1, 10.0), jobs.count_piece(job_id, 2, 10.0)
        )
        done = [job.progress.pieces_done for job in results if job and job.progress]
        assert sorted(done) == [2, 3]


async def test_the_first_language_claimed_holds_for_every_piece(jobs: JobStore) -> None:
    job_id = await recognizing(jobs, pieces=2)
    assert await jobs.claim_language(job_id, "de") == "de"
    assert await jobs.claim_language(job_id, "nl") == "de"


async def test_pieces_read_back_in_order_and_are_deleted_with_the_job(jobs: JobStore) -> None:
    job_id = await recognizing(jobs, pieces=3)
    for index in (2, 0, 1, 0):
        text = f"piece {index}"
        transcript = Transcript(
            text=text,
            language="en",
            segments=[Segment(start=index * 10, end=index * 10 + 1, text=text)],
        )
        await jobs.save_piece(
            PieceResult(
                job_id=job_id,
                index=index,
                offset_seconds=index * 10.0,
                seconds=10.0,
                transcript=transcript,
                engine_seconds=0.5,
                worker="test",
            )
        )
    pieces = await jobs.pieces(job_id)
    assert [piece.transcript.text for piece in pieces] == ["piece 0", "piece 1", "piece 2"]
    await jobs.delete(job_id)
    assert await jobs.pieces(job_id) == []


async def test_only_unfinished_jobs_past_their_own_deadline_are_overdue(jobs: JobStore) -> None:
    later = await recognizing(jobs, pieces=1)
    past = await new_job(jobs)
    await jobs.plan_pieces(
        past, pieces=1, audio_seconds=1, deadline_at=now() - timedelta(seconds=1)
    )
    finished = await new_job(jobs)
    await jobs.plan_pieces(
        finished, pieces=1, audio_seconds=1, deadline_at=now() - timedelta(seconds=1)
    )
    await jobs.fail(finished, ErrorCode.NO_AUDIO, "none")
    overdue = await jobs.overdue(now())
    assert past in overdue
    assert later not in overdue
    assert finished not in overdue


async def test_an_idempotency_key_is_claimed_once_and_released_only_by_its_claimant(
    jobs: JobStore,
) -> None:
    key = f"billing:{new_job_id()}"
    first, second = new_job_id(), new_job_id()
    assert await jobs.claim_request(key, first) is None
    assert await jobs.claim_request(key, second) == first
    await jobs.release_request(key, second)
    assert await jobs.claim_request(key, second) == first
    await jobs.release_request(key, first)
    assert await jobs.claim_request(key, second) is None


async def test_queued_audio_counts_what_is_left_of_unfinished_jobs(jobs: JobStore) -> None:
    before = await jobs.queued_audio_seconds()
    waiting, halfway, finished = [new_job_id() for _ in range(3)]
    for job_id, seconds in ((waiting, 30.0), (halfway, 100.0), (finished, 50.0)):
        await jobs.create(
            job_id, JobOptions(engine="sphinx", language="en"), filename="a.mp3", size_bytes=10,
            content_type="audio/mpeg", settings=SETTINGS, duration_seconds=seconds,
        )  # fmt: skip
    await jobs.plan_pieces(halfway, pieces=2, audio_seconds=100.0, deadline_at=now())
    await jobs.count_piece(halfway, 0, 60.0)
    await jobs.advance(finished, JobStatus.DONE, allowed_from=(JobStatus.QUEUED,), text="")
    assert await jobs.queued_audio_seconds() - before == pytest.approx(30.0 + 40.0)


async def test_jobs_made_in_one_millisecond_keep_the_order_they_were_made_in(
    jobs: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = now()
    monkeypatch.setattr("shared.jobs.store.now", lambda: moment)
    owner = f"key-{new_job_id()[:8]}"
    made = [await new_job(jobs, owner, held=True) for _ in range(6)]
    listed = [job.job_id for job in await jobs.page(Listing(owner=owner), limit=10)]
    released = []
    while (oldest := await jobs.next_held(owner)) is not None:
        await jobs.release(oldest, SETTINGS)
        released.append(oldest.job_id)
    assert listed == made[::-1]
    assert released == made


async def test_held_jobs_are_released_oldest_first_and_only_once(jobs: JobStore) -> None:
    owner = f"key-{new_job_id()[:8]}"
    made = [await new_job(jobs, owner, held) for held in (False, True, True)]
    before = (await jobs.count_dispatched(owner), owner in await jobs.owners_holding())
    oldest = await jobs.next_held(owner)
    assert oldest is not None
    first_release = await jobs.release(oldest, SETTINGS)
    second_release = await jobs.release(oldest, SETTINGS)
    after = await jobs.count_dispatched(owner)
    assert before == (1, True)
    assert oldest is not None
    assert oldest.job_id == made[1]
    assert (first_release, second_release) == (True, False)
    assert after == 2
    assert made[1] not in await jobs.overdue(now() + timedelta(minutes=30))
    assert made[2] not in await jobs.overdue(now() + timedelta(days=1))
