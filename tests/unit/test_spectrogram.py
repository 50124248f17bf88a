"""Whisper's spectrogram framed in blocks: the same as faster-whisper's to the last bit, in a
tenth of the memory."""

import tracemalloc

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from recognizer.engines import read_audio
from recognizer.engines.faster_whisper import float_samples
from recognizer.spectrogram import BLOCK_FRAMES, BlockwiseFeatureExtractor
from tests import media

RATE = 16_000


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Real speech of several blocks, 16 kHz mono float32, as a slot reads it."""
    spoken = media.speak(media.STORY, tmp_path_factory.mktemp("spectrogram") / "spoken.wav")
    samples: np.ndarray = float_samples(read_audio(spoken))
    return samples


def test_speech_gets_the_spectrogram_faster_whisper_computes(speech: np.ndarray) -> None:
    assert len(speech) > 3 * BLOCK_FRAMES * 160  # several blocks, the last one partial
    ours, theirs = BlockwiseFeatureExtractor()(speech), FeatureExtractor()(speech)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)


# A last block of one frame, of one frame and a few samples, two whole blocks, one frame more.
@pytest.mark.parametrize(
    "samples",
    [BLOCK_FRAMES * 160, BLOCK_FRAMES * 160 + 7, BLOCK_FRAMES * 160 * 2 - 1, BLOCK_FRAMES * 320],
)
def test_every_length_at_a_blocks_border_gets_the_same_spectrogram(
    speech: np.ndarray, samples: int
) -> None:
    assert (samples + 160) // 160 > BLOCK_FRAMES  # the premise: more than one block
    ours, theirs = (
        BlockwiseFeatureExtractor()(speech[:samples]),
        FeatureExtractor()(speech[:samples]),
    )
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)


def test_a_quiet_block_is_clamped_to_the_loudest_block_of_the_whole(speech: np.ndarray) -> None:
    """Whisper floors every band at 8 below the loudest of the whole stretch, not of a block."""
    audio = np.concatenate([speech[: RATE * 12] * 1e-4, speech[: RATE * 12]])
    ours, theirs = BlockwiseFeatureExtractor()(audio), FeatureExtractor()(audio)
    assert np.array_equal(ours, theirs)
    assert ours.min() == pytest.approx(ours.max() - 2.0)  # 8 below, on the scale divided by 4


def peak_mb(extract: FeatureExtractor, audio: np.ndarray) -> float:
    tracemalloc.start()
    try:
        features = extract(audio)
        return float(tracemalloc.get_traced_memory()[1] - features.nbytes) / 2**20
    finally:
        tracemalloc.stop()


def growth_mb_per_second(extract: FeatureExtractor, speech: np.ndarray) -> float:
    minute, ten_minutes = np.resize(speech, RATE * 60), np.resize(speech, RATE * 600)
    return (peak_mb(extract, ten_minutes) - peak_mb(extract, minute)) / 540


def test_its_memory_grows_by_the_power_spectrum_alone(speech: np.ndarray) -> None:
    """Beyond its result, the power spectrum's 201 bins of float32 (0.08 MB a second)."""
    assert growth_mb_per_second(BlockwiseFeatureExtractor(), speech) < 0.1
    # The premise: faster-whisper's own needs about 1 MB for every second more.
    assert growth_mb_per_second(FeatureExtractor(), speech) > 0.8
