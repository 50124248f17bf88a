"""The engines and their slot processes, on real speech."""

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest

from recognizer.engines import EngineConfig, EngineUnavailable, load_engines, read_audio
from recognizer.health import Health
from recognizer.pool import NoSlots, Request, SlotCrashed, SlotPool
from recognizer.provenance import describe_model
from recognizer.speaker_processes import speaker_process_pool
from recognizer.weights import TINY_EN_SHA256
from shared.fleet import RecognizerEntry
from shared.jobs.models import ErrorCode, JobFailure
from shared.jobs.options import JobOptions
from tests import media
from transcoder.convert import to_wav

CONFIG = EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=5)


def english(engine: str, **asked: Any) -> JobOptions:
    return JobOptions(engine=engine, language="en", **asked)


@pytest.fixture(scope="module")
def speech_wav(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("wav") / "speech.wav"
    to_wav(clips["mp3"], target, timeout_seconds=60, max_seconds=3600)
    return target


def test_whisper_hears_the_words_and_times_them(speech_wav: Path) -> None:
    engine = load_engines(("faster-whisper",), CONFIG)["faster-whisper"]
    transcript = engine.transcribe(read_audio(speech_wav), english("faster-whisper"))
    assert set(media.EXPECTED_WORDS) <= media.words_of(transcript.text)
    assert transcript.language == "en"
    assert transcript.confidence is not None
    assert 0 < transcript.confidence <= 1
    [segment] = transcript.segments
    assert 0 <= segment.start < segment.end <= 6
    assert " ".join(word.word for word in segment.words) == segment.text
    assert all(
        a.end <= b.start + 0.01 for a, b in zip(segment.words, segment.words[1:], strict=False)
    )


def test_whisper_decodes_at_the_temperature_asked_for(speech_wav: Path) -> None:
    engine = load_engines(("faster-whisper",), CONFIG)["faster-whisper"]
    default = engine.transcribe(read_audio(speech_wav), english("faster-whisper"))
    warm = engine.transcribe(read_audio(speech_wav), english("faster-whisper", temperature=0.6))
    assert [segment.temperature for segment in default.segments] == [0.0]
    assert [segment.temperature for segment in warm.segments] == [0.6]


def test_whisper_hears_nothing_in_silence(tmp_path: Path) -> None:
    engine = load_engines(("faster-whisper",), CONFIG)["faster-whisper"]
    quiet = media.silence(tmp_path / "quiet.wav", 30)
    assert engine.transcribe(read_audio(quiet), english("faster-whisper")).text == ""


def test_sphinx_transcribes_with_word_times(speech_wav: Path) -> None:
    engine = load_engines(("sphinx",), CONFIG)["sphinx"]
    transcript = engine.transcribe(read_audio(speech_wav), english("sphinx"))
    [segment] = transcript.segments
    assert segment.text == transcript.text != ""
    assert [word.word for word in segment.words] == transcript.text.split()
    assert all(0 <= word.start < word.end <= 6 for word in segment.words)
    assert transcript.confidence is not None


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[SlotPool]:
    slots = SlotPool(1, ("faster-whisper", "sphinx"), CONFIG)
    await slots.start()
    yield slots
    slots.close()


async def test_pool_transcribes_with_the_engine_asked_for(pool: SlotPool, speech_wav: Path) -> None:
    whisper = await pool.transcribe(Request(speech_wav, english("faster-whisper")), 60)
    assert set(media.EXPECTED_WORDS) <= media.words_of(whisper.text)
    sphinx = await pool.transcribe(Request(speech_wav, english("sphinx")), 60)
    assert sphinx.text
    assert sphinx.text != whisper.text


async def test_a_transcript_carries_the_provenance_of_its_engine_and_job(
    pool: SlotPool, speech_wav: Path
) -> None:
    asked = {"prompt": "A report.", "temperature": 0.2, "hotwords": ["Friday"]}
    whisper = await pool.transcribe(Request(speech_wav, english("faster-whisper", **asked)), 60)
    sphinx = await pool.transcribe(Request(speech_wav, english("sphinx", **asked)), 60)
    assert whisper.provenance is not None
    assert whisper.provenance.model_dump(exclude={"decoding"}) == (
        pool.models["faster-whisper"].model_dump()
    )
    assert whisper.provenance.model_sha256 == TINY_EN_SHA256
    assert whisper.provenance.decoding.model_dump() == {
        "task": "transcribe",
        "language": "en",
        "beam_size": 5,
        "vad_filter": True,
        "temperature": 0.2,
        "word_timestamps": True,
        "batch_size": 0,
        "prompt": "A report.",
        "hotwords": ["Friday"],
    }
    # Sphinx has no use for Whisper's settings: they are not claimed for it.
    assert sphinx.provenance is not None
    assert sphinx.provenance.model_sha256 == pool.models["sphinx"].model_sha256
    assert sphinx.provenance.decoding.model_dump(exclude={"task", "language"}) == {
        "beam_size": None,
        "vad_filter": None,
        "temperature": None,
        "word_timestamps": None,
        "batch_size": None,
        "prompt": None,
        "hotwords": [],
    }


def test_weights_that_are_not_the_pinned_ones_stop_the_engine(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"not Whisper base")
    config = replace(CONFIG, whisper_base_folder=str(tmp_path))
    with pytest.raises(EngineUnavailable, match=r"SHA-256 \w+, not d01c3014"):
        describe_model("whisper-base", config)


async def test_a_recognition_over_time_is_killed_and_the_slot_replaced(
    pool: SlotPool, speech_wav: Path
) -> None:
    pid_before = next(iter(pool._all))._process.pid
    assert pid_before is not None
    with pytest.raises(JobFailure) as failure:
        await pool.transcribe(Request(speech_wav, english("faster-whisper")), 0.05)
    assert failure.value.code is ErrorCode.TIMEOUT
    with pytest.raises(ProcessLookupError):
        os.kill(pid_before, 0)
    transcript = await pool.transcribe(Request(speech_wav, english("faster-whisper")), 60)
    assert "quarterly" in media.words_of(transcript.text)


async def test_a_slot_that_dies_is_replaced(pool: SlotPool, speech_wav: Path) -> None:
    slot = next(iter(pool._all))
    assert slot._process.pid is not None
    os.kill(slot._process.pid, signal.SIGKILL)
    with pytest.raises(SlotCrashed):
        await pool.transcribe(Request(speech_wav, english("faster-whisper")), 60)
    transcript = await pool.transcribe(Request(speech_wav, english("faster-whisper")), 60)
    assert "quarterly" in media.words_of(transcript.text)


async def test_unreadable_audio_fails_the_job_and_keeps_the_slot(
    pool: SlotPool, tmp_path: Path, speech_wav: Path
) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(JobFailure) as failure:
        await pool.transcribe(Request(broken, english("sphinx")), 60)
    with pytest.raises(JobFailure) as missing:
        await pool.transcribe(Request(tmp_path / "gone.wav", english("sphinx")), 60)
    assert failure.value.code is missing.value.code is ErrorCode.RECOGNITION_FAILED
    # What the job's owner reads: no exception text, no file names of this machine.
    for told in (failure.value.message, missing.value.message):
        assert "could not process the audio" in told
        assert str(tmp_path) not in told
        assert "Error" not in told
    assert (await pool.transcribe(Request(speech_wav, english("sphinx")), 60)).text


def test_the_batched_pipeline_keeps_segment_and_word_times(speech_wav: Path) -> None:
    batched = replace(CONFIG, batch_size=8)
    engine = load_engines(("faster-whisper",), batched)["faster-whisper"]
    transcript = engine.transcribe(read_audio(speech_wav), english("faster-whisper"))
    assert set(media.EXPECTED_WORDS) <= media.words_of(transcript.text)
    [segment] = transcript.segments
    assert 0 <= segment.start < segment.end <= 6
    assert [word.word for word in segment.words] == segment.text.split()


@pytest.mark.parametrize(
    ("make_pool", "said"),
    [
        (lambda: SlotPool(1, ("sphinx",), CONFIG), "1 engine slot(s), with sphinx, ready (pid "),
        (
            lambda: speaker_process_pool(1, CONFIG, 0, print),
            "1 speaker-labelling process(es), which serve no engine, ready (pid ",
        ),
    ],
)
async def test_a_started_pool_says_what_its_processes_are_for(
    caplog: pytest.LogCaptureFixture, make_pool: Callable[[], SlotPool], said: str
) -> None:
    caplog.set_level("INFO", logger="recognizer.pool")
    pool = make_pool()
    await pool.start()
    pool.close()
    [line] = [record.getMessage() for record in caplog.records if "ready" in record.getMessage()]
    assert line.startswith(said), line


async def test_a_freed_slot_goes_to_whoever_waited_longest() -> None:
    pool = SlotPool(1, ("faster-whisper",), CONFIG)
    slot = object()
    pool.release(slot)  # type: ignore[arg-type]
    order: list[str] = []

    async def take(name: str) -> None:
        async with pool.reserve():
            order.append(name)
            await asyncio.sleep(0.01)

    async with pool.reserve():
        waiting = []
        for name in ("first", "second", "third"):
            waiting.append(asyncio.create_task(take(name)))
            await asyncio.sleep(0.01)
        assert pool.busy == 1
    await asyncio.gather(*waiting)
    assert order == ["first", "second", "third"]
    assert pool.busy == 0


async def test_a_pool_whose_slot_cannot_come_back_turns_work_away_and_says_so(
    speech_wav: Path,
) -> None:
    halts: list[str] = []
    pool = SlotPool(1, ("sphinx",), CONFIG, on_empty=halts.append, replace_pause_seconds=0.01)
    await pool.start()
    try:
        pool._engines = ("no-such-engine",)  # as if its model had gone from the disk since
        with pytest.raises(JobFailure) as failure:
            await pool.transcribe(Request(speech_wav, english("sphinx")), 0.01)
        with pytest.raises(NoSlots):
            await pool.transcribe(Request(speech_wav, english("sphinx")), 60)
    finally:
        pool.close()
    assert failure.value.code is ErrorCode.TIMEOUT
    assert pool.size == 0
    assert halts == ["no slot could be started in 3 tries"]


async def test_a_health_problem_tells_the_fleet_no_paths_or_job_ids() -> None:
    reported: list[RecognizerEntry] = []

    class Fleet:
        async def report(self, entry: RecognizerEntry) -> None:
            reported.append(entry)

    class Pool:
        size, busy = 2, 1
        models: ClassVar[dict[str, Any]] = {}

    health = Health(cast(Any, Fleet()), cast(Any, Pool()), ("faster-whisper",))
    job_id = "c" * 32
    await health.media_missing(f"/srv/stt/media/{job_id}/piece-00003.wav is missing")
    [entry] = reported
    assert entry.problem is not None
    assert "cannot read the audio" in entry.problem
    assert job_id not in entry.problem
    assert "/srv" not in entry.problem
