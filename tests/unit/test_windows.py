"""The encoder's window: faster-whisper's padding cut to whole 10-s steps after the sound, down
to 20 s."""

import numpy as np
import pytest

from recognizer.windows import SHORTEST_WINDOW_FRAMES, trimmed


def padded(sound_frames: int, frames: int = 3000, batch: int = 1) -> np.ndarray:
    features = np.zeros((batch, 80, frames), dtype=np.float32)
    features[..., :sound_frames] = -0.7
    return features


@pytest.mark.parametrize(
    ("sound_frames", "window"),
    [(1, 2000), (1000, 2000), (1001, 2000), (2000, 2000), (2001, 3000), (3000, 3000)],
)
def test_the_window_ends_at_the_first_10_s_step_after_the_sound_and_lasts_20_s_at_least(
    sound_frames: int, window: int
) -> None:
    features = padded(sound_frames)
    kept = trimmed(features)
    assert kept.shape == (1, 80, window)
    assert np.array_equal(kept, features[..., :window])


def test_sound_in_a_single_band_counts_as_sound() -> None:
    features = np.zeros((80, 3000), dtype=np.float32)
    features[41, 2500] = 0.01
    assert trimmed(features).shape == (80, 3000)


def test_a_window_of_padding_alone_keeps_the_shortest_window() -> None:
    assert trimmed(np.zeros((80, 3000), dtype=np.float32)).shape == (80, SHORTEST_WINDOW_FRAMES)


def test_a_batch_keeps_the_window_its_longest_member_needs() -> None:
    features = padded(400, batch=3)
    features[1, :, 1200:2100] = 0.3
    assert trimmed(features).shape == (3, 80, 3000)


def test_a_window_shorter_than_whispers_is_never_lengthened() -> None:
    assert trimmed(padded(700, frames=800)).shape == (1, 80, 800)


def test_digital_silence_at_the_end_of_the_audio_is_audio_not_padding() -> None:
    """What the cut rests on, with faster-whisper's own feature extractor: 3 s of sound, then
    19 s of exact zeros in the audio, padded to 30 s. The silence stays; only the padding goes."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    rate = 16_000
    sound = np.random.default_rng(1).uniform(-0.3, 0.3, 3 * rate).astype(np.float32)
    audio = np.concatenate([sound, np.zeros(19 * rate, dtype=np.float32)])
    features = pad_or_trim(FeatureExtractor(feature_size=80)(audio))
    assert not features[:, 2300:].any()  # the premise: padding follows the audio's 22 s
    assert features[:, :2200].any(axis=0).all()
    assert trimmed(features).shape == (80, 3000)
