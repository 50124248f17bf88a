"""Whisper's spectrogram in blocks: the same as faster-whisper's, in memory that does not grow
with the audio beyond the result itself."""

import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from recognizer.spectrogram import BLOCK_FRAMES, BlockwiseFeatureExtractor
from tests import media

RATE = 16_000


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Real speech of several blocks, 16 kHz mono float32."""
    folder = tmp_path_factory.mktemp("spectrogram")
    spoken = media.speak(media.STORY, folder / "spoken.wav")
    wav = folder / "speech.wav"
    media.ffmpeg("-i", str(spoken), "-ar", str(RATE), "-ac", "1", str(wav))
    return read(wav)


def read(wav: Path) -> np.ndarray:
    with wave.open(str(wav)) as opened:
        pcm = np.frombuffer(opened.readframes(opened.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768


def test_speech_gets_the_spectrogram_faster_whisper_computes(speech: np.ndarray) -> None:
    assert len(speech) > 3 * BLOCK_FRAMES * 160  # several blocks, the last one partial
    ours, theirs = BlockwiseFeatureExtractor()(speech), FeatureExtractor()(speech)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("samples", [RATE * 3, BLOCK_FRAMES * 160 + 7, BLOCK_FRAMES * 160 * 2])
def test_every_length_at_a_blocks_border_gets_the_same_spectrogram(
    speech: np.ndarray, samples: int
) -> None:
    ours, theirs = (
        BlockwiseFeatureExtractor()(speech[:samples]),
        FeatureExtractor()(speech[:samples]),
    )
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_a_quiet_block_is_clamped_to_the_loudest_block_of_the_whole(speech: np.ndarray) -> None:
    """Whisper floors every band at 8 below the loudest of the whole stretch, not of a block."""
    audio = np.concatenate([speech[: RATE * 12] * 1e-4, speech[: RATE * 12]])
    ours, theirs = BlockwiseFeatureExtractor()(audio), FeatureExtractor()(audio)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert ours.min() == pytest.approx(ours.max() - 2.0)  # 8 below, on the scale divided by 4


def peak_mb(extract: FeatureExtractor, audio: np.ndarray) -> float:
    tracemalloc.start()
    try:
        features = extract(audio)
        return float(tracemalloc.get_traced_memory()[1] - features.nbytes) / 2**20
    finally:
        tracemalloc.stop()


def test_its_memory_beyond_the_result_does_not_grow_with_the_audio(speech: np.ndarray) -> None:
    minute, ten_minutes = np.resize(speech, RATE * 60), np.resize(speech, RATE * 600)
    extract = BlockwiseFeatureExtractor()
    assert peak_mb(extract, ten_minutes) < 1.5 * peak_mb(extract, minute)
    # faster-whisper's own grows with it (the premise): about 1 MB a second.
    assert peak_mb(FeatureExtractor(), ten_minutes) > 5 * peak_mb(FeatureExtractor(), minute)
