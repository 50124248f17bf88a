"""Long recordings, cut into pieces that every free slot works on at once: the same words as
decoding them whole, progress as it happens, the first words before the conversion has ended, a
fleet that survives losing a worker or its transcoder, short jobs that do not wait behind long
ones, and cancelling."""

import asyncio
import difflib
import itertools
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from pymongo import AsyncMongoClient

from recognizer.engines import EngineConfig, load_engines, read_audio
from shared.jobs.models import Job, JobStatus, UtcDatetime
from shared.jobs.options import JobOptions
from shared.jobs.store import JobStore
from tests import media
from tests.integration.api import accepted_job_id, follow, until, until_status
from tests.integration.conftest import FAST, RunningSystem, launched
from tests.integration.test_faults import engine_runs, kill, until_engine_runs
from transcoder.convert import to_wav
from transcoder.pieces import FIRST_PIECE_SECONDS, plan_pieces

PIECE_SECONDS = 15
CLEANUP_DELAY_SECONDS = 3


@pytest.fixture(scope="module")
async def fleet(
    mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningSystem]:
    """Two recognizers of one slot each, and recordings cut into pieces of 15 s."""
    services = ("gateway", "transcoder", "recognizer", "recognizer", "janitor")
    async with launched(
        tmp_path_factory.mktemp("fleet"),
        mongodb_url,
        services=services,
        piece_seconds=PIECE_SECONDS,
        recognizer_slots=1,
        cleanup_delay_seconds=CLEANUP_DELAY_SECONDS,
        events_keepalive_seconds=1,
        delivery_limit=3,
        default_engine=FAST,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two minutes of speech as MP3."""
    folder = tmp_path_factory.mktemp("story")
    return media.to_mp3(media.speak(media.STORY, folder / "story.wav"), folder / "story.mp3")


@pytest.fixture
async def store(fleet: RunningSystem) -> AsyncIterator[JobStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        str(fleet.settings.mongodb_url), tz_aware=True
    )
    yield JobStore(client, fleet.settings.mongodb_database)
    await client.close()


def whole_transcript(story: Path, tmp_path: Path) -> str:
    """The recording decoded whole, in one go, by the same engine."""
    wav = tmp_path / "whole.wav"
    to_wav(story, wav, timeout_seconds=60, max_seconds=3600)
    config = EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=5)
    engine = load_engines(("faster-whisper",), config)["faster-whisper"]
    return engine.transcribe(
        read_audio(wav), JobOptions(engine="faster-whisper", language="en")
    ).text


def word_error_rate(reference: str, hypothesis: str) -> float:
    expected, heard = media.word_list(reference), media.word_list(hypothesis)
    matcher = difflib.SequenceMatcher(a=expected, b=heard, autojunk=False)
    errors = sum(
        max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    )
    return errors / len(expected)


def agreement(whole: list[str], pieces: list[str]) -> dict[int, int]:
    """For each word of `pieces` that both decodings agree on, its place in `whole`."""
    matcher = difflib.SequenceMatcher(a=pieces, b=whole, autojunk=False)
    return {
        block.a + offset: block.b + offset
        for block in matcher.get_matching_blocks()
        for offset in range(block.size)
    }


async def test_pieces_come_back_with_the_words_of_the_whole_and_nothing_twice_at_a_border(
    fleet: RunningSystem, story: Path, store: JobStore, tmp_path: Path
) -> None:
    async with fleet.client() as client:
        job_id = await accepted_job_id(client, story)
        job = await until_status(client, job_id, within=120)
        pieces = await store.pieces(job_id)
    assert job["status"] == "done", job
    assert job["progress"]["pieces_total"] == len(pieces) >= 4
    assert job["progress"]["pieces_done"] == len(pieces)
    assert job["progress"]["audio_seconds_done"] == pytest.approx(job["duration_seconds"])

    whole = await asyncio.to_thread(whole_transcript, story, tmp_path)
    assert word_error_rate(media.STORY, job["text"]) <= word_error_rate(media.STORY, whole) + 0.01

    segments = job["segments"]
    starts = [segment["start"] for segment in segments]
    assert starts == sorted(starts)
    words = [word for segment in segments for word in segment["words"]]
    assert all(a["end"] <= b["start"] + 0.05 for a, b in itertools.pairwise(words))
    # Between the nearest words both decodings agree on either side of each border, the pieces
    # have as many words as the whole: none was dropped or repeated where a piece ends.
    piece_words = [media.word_list(piece.transcript.text) for piece in pieces]
    heard = [word for words_of_piece in piece_words for word in words_of_piece]
    agreed = agreement(media.word_list(whole), heard)
    border = 0
    for words_of_piece in piece_words[:-1]:
        border += len(words_of_piece)
        before = max(i for i in agreed if i < border)
        after = min(i for i in agreed if i >= border)
        assert after - before <= 4, f"no agreement near word {border}"
        assert agreed[after] - agreed[before] == after - before, heard[before : after + 1]
    assert job["text"] == " ".join(
        piece.transcript.text for piece in pieces if piece.transcript.text
    )


async def test_the_event_stream_shows_progress_and_the_transcript_as_it_grows(
    fleet: RunningSystem, story: Path
) -> None:
    async with fleet.client() as client:
        job_id = await accepted_job_id(client, story)
        stream = await follow(client, job_id, within=120)
    statuses = [job["status"] for job in stream.statuses]
    assert statuses[-1] == "done"
    assert "recognizing" in statuses
    done = [update["progress"]["pieces_done"] for update in stream.progress]
    assert len(set(done)) >= 3, done
    assert done == sorted(done)
    assert all(update["segments"] for update in stream.progress)
    total = stream.statuses[-1]["progress"]["pieces_total"]
    assert done[-1] < total  # the last piece is announced by the final status
    assert all(update["progress"]["eta_seconds"] is not None for update in stream.progress)


@pytest.mark.timeout(300)  # Whisper base on 55 s of speech, slow when the machine is busy
async def test_with_auto_a_piece_clearly_in_another_language_keeps_its_own(
    fleet: RunningSystem, tmp_path: Path, store: JobStore
) -> None:
    """German, then English: the job is labelled with one language (which one, by majority, is
    tested in process in test_quality.py), and the English end, heard surely, stays English
    whatever the majority; when pieces differ, every segment says its language."""
    german = media.speak(media.GERMAN_STORY, tmp_path / "de.wav", voice="de")
    # Five sentences: the last piece or two are English alone.
    english = media.speak(". ".join(media.PARAGRAPH.split(". ")[:5]) + ".", tmp_path / "en.wav")
    speech = tmp_path / "de-en.mp3"
    media.ffmpeg(
        "-i", str(german), "-i", str(english),
        "-filter_complex", "[0:a][1:a]concat=n=2:v=0:a=1", str(speech),
    )  # fmt: skip
    async with fleet.client() as client:
        job_id = await accepted_job_id(client, speech, engine="whisper-base", language="auto")
        job = await until_status(client, job_id, within=270)
        pieces = await store.pieces(job_id)
    assert job["status"] == "done", job
    assert len(pieces) >= 3
    # Claimed by a vote over the whole recording: the last piece goes out after the total.
    assert job["detected_language"] in ("de", "en")
    assert job["language_probability"] is not None
    assert pieces[-1].transcript.language == "en"
    assert len(media.words_of(pieces[-1].transcript.text) & media.words_of(media.PARAGRAPH)) >= 3
    # Which languages the German pieces are heard in varies: Whisper base hears espeak's German
    # as German, English or, at times, Latin.
    heard = {piece.transcript.language for piece in pieces}
    with_words = {piece.transcript.language for piece in pieces if piece.transcript.segments}
    languages = {segment["language"] for segment in job["segments"]}
    assert languages == (with_words if len(heard) > 1 else {None})


async def test_a_short_clip_passes_a_long_recording_under_way(
    fleet: RunningSystem, story: Path, clips: dict[str, Path]
) -> None:
    async with fleet.client() as client:
        long_id = await accepted_job_id(client, story)
        await until_status(client, long_id, ("recognizing",))
        short = await until_status(client, await accepted_job_id(client, clips["wav"]))
        long_now = (await client.get(f"/v1/jobs/{long_id}")).json()
        # Its remaining pieces would only keep the slots from the next test.
        await client.post(f"/v1/jobs/{long_id}/cancel")
        await until_status(client, long_id)
    assert short["status"] == "done"
    assert long_now["status"] == "recognizing"
    assert long_now["progress"]["pieces_done"] < long_now["progress"]["pieces_total"]


async def test_a_cancelled_job_stops_reaching_the_engines_and_its_files_go(
    fleet: RunningSystem, story: Path, tmp_path: Path
) -> None:
    async with fleet.client() as client:
        job_id = await accepted_job_id(client, story)
        await until_engine_runs(fleet, job_id, times=2)
        cancelled = await client.post(f"/v1/jobs/{job_id}/cancel")
        runs_at_cancel = engine_runs(fleet, job_id)
        job = await until_status(client, job_id)
        again = await client.post(f"/v1/jobs/{job_id}/cancel")
        unknown = await client.post(f"/v1/jobs/{'0' * 32}/cancel")
        media_dir = Path(fleet.settings.media_dir)
        await until(
            lambda: not any((media_dir / kind / job_id).exists() for kind in ("uploads", "audio")),
            within=CLEANUP_DELAY_SECONDS + 30,
        )
    assert cancelled.status_code == 200, cancelled.text
    assert (job["status"], job["error"]["code"]) == ("failed", "cancelled")
    # Cancelled while it was still being converted, it may have no total: what it would have.
    wav = tmp_path / "story.wav"
    await asyncio.to_thread(to_wav, story, wav, 60, 3600)
    pieces = len(plan_pieces(wav, PIECE_SECONDS, first_seconds=FIRST_PIECE_SECONDS, slots=2))
    assert job["progress"]["pieces_total"] in (None, pieces)
    assert pieces > 4
    # Only the pieces already in a slot may finish; the rest never reach an engine.
    assert engine_runs(fleet, job_id) <= runs_at_cancel + 2
    assert engine_runs(fleet, job_id) < pieces
    assert (again.status_code, unknown.status_code) == (409, 404)


async def test_two_recognizers_share_a_recording_and_losing_one_mid_piece_loses_nothing(
    fleet: RunningSystem, story: Path, store: JobStore
) -> None:
    async with fleet.client() as client:
        job_id = await accepted_job_id(client, story)
        await until_engine_runs(fleet, job_id, times=4)
        victim, survivor = fleet.stack.running("recognizer")
        assert kill(victim) == -signal.SIGKILL
        job = await until_status(client, job_id, within=120)
        pieces = await store.pieces(job_id)
        fleet.start("recognizer")
    assert job["status"] == "done", job
    workers = {piece.worker.split(":")[1] for piece in pieces}
    assert {str(victim.pid), str(survivor.pid)} <= workers
    assert [piece.index for piece in pieces] == list(range(job["progress"]["pieces_total"]))
    for piece in pieces:
        if piece.transcript.text:
            assert job["text"].count(piece.transcript.text) == 1
    assert word_error_rate(media.STORY, job["text"]) < 0.3


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The story and the paragraph, spoken."""
    folder = tmp_path_factory.mktemp("spoken")
    return [
        media.speak(media.STORY, folder / "story.wav"),
        media.speak(media.PARAGRAPH, folder / "paragraph.wav"),
    ]


async def until_job(
    store: JobStore,
    job_id: str,
    condition: Callable[[Job], bool],
    within: float = 60,
    seen: list[Job] | None = None,
) -> Job:
    """The job once `condition` holds, read from the store (each reading kept in `seen`)."""
    deadline = time.monotonic() + within
    while True:
        job = await store.get(job_id)
        if job is not None:
            if seen is not None:
                seen.append(job)
            if condition(job):
                return job
        assert time.monotonic() < deadline, f"job {job_id}: not as awaited within {within} s"
        await asyncio.sleep(0.02)


def first_recognized(job: Job) -> bool:
    return job.progress is not None and job.progress.pieces_done >= 1


async def test_the_first_words_come_back_before_a_long_recording_is_converted(
    fleet: RunningSystem, spoken: list[Path], store: JobStore, tmp_path: Path
) -> None:
    recording = media.slow_to_convert(spoken, 30, tmp_path / "slow.opus")
    async with fleet.client() as client:
        job_id = await accepted_job_id(client, recording)
        first = await until_job(store, job_id, first_recognized)
        converted = await until_job(store, job_id, lambda job: job.audio_ready_at is not None)
        cursor = store.database["pieces"].find({"job_id": job_id}, {"saved_at": 1})
        saved = [
            TypeAdapter(UtcDatetime).validate_python(piece["saved_at"]) async for piece in cursor
        ]
        cancelled = await client.post(f"/v1/jobs/{job_id}/cancel")
        await until_status(client, job_id)
    # When the first piece was recognized, the conversion had not ended.
    assert first.progress is not None
    assert (first.progress.pieces_total, first.audio_ready_at) == (None, None)
    assert converted.audio_ready_at is not None
    assert min(saved) < converted.audio_ready_at
    assert converted.progress is not None
    assert (converted.progress.pieces_total or 0) > 50
    assert cancelled.status_code == 200, cancelled.text


async def test_a_transcoder_killed_while_handing_out_pieces_leaves_every_piece_once(
    fleet: RunningSystem, spoken: list[Path], store: JobStore, tmp_path: Path
) -> None:
    """Killed once its first piece is handed out, before the conversion has ended: its
    message comes back to the transcoder started in its place, which converts and hands out
    the pieces again while the recognizers work on those handed out before. Pieces recognized
    are not recognized again, the progress never goes back, and the job ends with every piece
    once, in order."""
    recording = media.slow_to_convert(spoken, 10, tmp_path / "slow.opus")
    async with fleet.client() as client:
        job_id = await accepted_job_id(client, recording)
        await until_job(store, job_id, lambda job: job.progress is not None)
        [transcoder] = fleet.stack.running("transcoder")
        assert kill(transcoder) == -signal.SIGKILL
        at_kill = await store.get(job_id)
        fleet.start("transcoder")
        seen: list[Job] = []
        job = await until_job(store, job_id, lambda job: job.status.is_final, 240, seen)
        pieces = await store.pieces(job_id)
    assert at_kill is not None
    assert at_kill.progress is not None
    assert (at_kill.progress.pieces_total, at_kill.audio_ready_at) == (None, None)
    assert job.status is JobStatus.DONE, job.error
    done = [later.progress.pieces_done for later in seen if later.progress is not None]
    assert done == sorted(done)
    assert done[0] >= at_kill.progress.pieces_done
    assert job.progress is not None
    total = job.progress.pieces_total or 0
    assert [piece.index for piece in pieces] == list(range(total))
    for before, after in itertools.pairwise(pieces):
        assert after.offset_seconds == pytest.approx(before.offset_seconds + before.seconds)
    assert sum(piece.seconds for piece in pieces) == pytest.approx(job.duration_seconds)
    # Only a piece in a slot (one each) as it was handed out again may have run twice.
    assert total <= engine_runs(fleet, job_id) <= total + 2
    assert job.text == " ".join(piece.transcript.text for piece in pieces if piece.transcript.text)
    assert word_error_rate(f"{media.STORY} {media.PARAGRAPH}", job.text or "") < 0.3
