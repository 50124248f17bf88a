"""Whisper's encoder on real speech in a window without faster-whisper's padding: the same words,
at the times they were spoken, for a fraction of a 30-s window's work."""

from pathlib import Path
from typing import Any

import pytest

from recognizer.engines import EngineConfig, FasterWhisperEngine, read_audio
from recognizer.spectrogram import BLOCK_FRAMES, BlockwiseFeatureExtractor
from shared.jobs.options import JobOptions
from tests import media

pytestmark = pytest.mark.integration


class WatchedEncoder:
    """CTranslate2's Whisper model, noting the frames of every window it encodes."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.windows: list[int] = []

    def encode(self, features: Any, **options: Any) -> Any:
        self.windows.append(features.shape[-1])
        return self._model.encode(features, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


@pytest.fixture(scope="module")
def watched() -> tuple[FasterWhisperEngine, WatchedEncoder]:
    engine = FasterWhisperEngine(EngineConfig("tiny.en", cpu_threads=1, beam_size=5))
    encoder = WatchedEncoder(engine._model.model)
    engine._model.model = encoder
    return engine, encoder


# One sentence needs a 20-s window; five need all of Whisper's 30 s, and none of it may be cut.
@pytest.mark.parametrize(("sentences", "window"), [(1, 2000), (5, 3000)])
def test_speech_is_encoded_in_a_window_of_20_s_or_more_cut_to_it_and_heard(
    watched: tuple[FasterWhisperEngine, WatchedEncoder],
    sentences: int,
    window: int,
    tmp_path: Path,
) -> None:
    engine, encoder = watched
    text = " ".join([media.SENTENCE, *media.PARAGRAPH.split(". ")[1:sentences]])
    audio = read_audio(media.speak(text, tmp_path / "speech.wav"))
    seconds = len(audio.frame_data) / (audio.sample_rate * audio.sample_width)
    # The premise: the speech needs that window.
    assert (0 if window == 2000 else window - 1000) / 100 < seconds < window / 100
    encoder.windows.clear()

    transcript = engine.transcribe(audio, JobOptions(engine="faster-whisper", language="en"))

    assert encoder.windows
    assert set(encoder.windows) == {window}
    heard = media.word_list(transcript.text)
    assert all(word in heard for word in media.EXPECTED_WORDS), transcript.text
    words = [word for segment in transcript.segments for word in segment.words]
    assert len(words) == len(heard)
    assert all(0 <= w.start <= w.end <= seconds + 0.1 for w in words)
    assert words[-1].end > seconds - 1.5


def test_a_stretch_longer_than_a_block_is_heard_through_the_blockwise_spectrogram(
    watched: tuple[FasterWhisperEngine, WatchedEncoder], tmp_path: Path
) -> None:
    engine, _encoder = watched
    assert isinstance(engine._model.feature_extractor, BlockwiseFeatureExtractor)
    audio = read_audio(media.speak(media.PARAGRAPH, tmp_path / "speech.wav"))
    seconds = len(audio.frame_data) / (audio.sample_rate * audio.sample_width)
    assert seconds > 2 * BLOCK_FRAMES / 100  # the premise: the spectrogram takes three blocks

    transcript = engine.transcribe(audio, JobOptions(engine="faster-whisper", language="en"))

    assert all(word in media.word_list(transcript.text) for word in media.EXPECTED_WORDS)
    assert transcript.segments[-1].end > seconds - 3
