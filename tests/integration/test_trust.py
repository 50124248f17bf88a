"""Trust in the words, on real audio decoded in process: nothing from noise or music, and no
turn of a real voice left without words."""

from pathlib import Path

import pytest

from recognizer.engines import EngineConfig, FasterWhisperEngine, read_audio
from recognizer.models import whisper_base
from recognizer.quality import RECOVERED
from recognizer.settings import RecognizerSettings
from shared.transcripts import Transcript
from tests import media

pytestmark = pytest.mark.integration

TINY = EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=5)


@pytest.fixture(scope="module")
def tiny() -> FasterWhisperEngine:
    return FasterWhisperEngine(TINY)


@pytest.fixture(scope="module")
def engines(tiny: FasterWhisperEngine) -> dict[str, FasterWhisperEngine]:
    base = whisper_base(RecognizerSettings().models_dir / "whisper-base")
    return {
        "tiny.en": tiny,
        "base": FasterWhisperEngine(EngineConfig(str(base), cpu_threads=1, beam_size=5)),
    }


@pytest.mark.parametrize("sound", ["white", "pink", "music"])
def test_noise_and_music_give_no_words(
    sound: str, engines: dict[str, FasterWhisperEngine], tmp_path: Path
) -> None:
    wav = tmp_path / f"{sound}.wav"
    media.plucked_tones(wav) if sound == "music" else media.noise(wav, sound)
    for name, engine in engines.items():
        transcript = engine.transcribe(read_audio(wav), "en")
        assert (name, transcript.text, transcript.segments) == (name, "", [])


def words_within(transcript: Transcript, start: float, end: float) -> list[str]:
    return [
        word.word
        for segment in transcript.segments
        for word in segment.words
        if start - 0.3 <= (word.start + word.end) / 2 <= end + 0.3
    ]


@pytest.mark.timeout(300)  # two decodings of 50 s of audio, slow on a busy machine
def test_a_voice_answering_closely_is_not_left_without_words(
    tiny: FasterWhisperEngine, tmp_path: Path
) -> None:
    wav = tmp_path / "turns.wav"
    answers = media.cold_voice_answering(wav, gap_seconds=0.6)
    audio = read_audio(wav)
    engine = tiny
    # Decoded once, as Whisper does it, the first two answers get no words of their own (at
    # most the last word before them, stretched over them).
    first_pass = engine._decoded(audio, "en")
    assert [len(words_within(first_pass, *answer)) <= 1 for answer in answers[:2]] == [True, True]

    transcript = engine.transcribe(audio, "en")
    for start, end in answers[:2]:
        assert len(words_within(transcript, start, end)) >= 3
        assert any(
            RECOVERED in segment.flags and start - 0.5 <= segment.start <= end
            for segment in transcript.segments
        )
    assert transcript.recovered_seconds >= 1.5
    assert "sick" in media.words_of(transcript.text)
    # The other voice's lines are all there, once.
    assert media.word_list(transcript.text).count("dashwood") == 1
    assert "amiable" in media.words_of(transcript.text)
