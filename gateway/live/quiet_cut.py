"""Where to cut an utterance whose speaker does not pause: at its quietest stretch, which in
continuous speech lies between words (a breath, the gap before a stressed syllable) rather than
inside one. Stop consonants make short silences inside words too, so the quiet is measured over a
stretch longer than they last."""

from typing import Any

import numpy as np

FRAME = 320  # samples at 16 kHz: 20 ms
# Frames averaged into one stretch: 120 ms, longer than the closure of a stop consonant.
STRETCH_FRAMES = 6


def quietest_point(samples: np.ndarray[Any, np.dtype[np.int16]], earliest: int) -> int:
    """The middle of the quietest stretch of `samples` that starts at `earliest` or later (a
    sample index into `samples`)."""
    frames = (len(samples) - earliest) // FRAME
    if frames < STRETCH_FRAMES:
        return len(samples)
    region = samples[earliest : earliest + frames * FRAME].astype(np.float64).reshape(frames, FRAME)
    energy = (region**2).mean(axis=1)
    stretches = np.convolve(energy, np.ones(STRETCH_FRAMES), mode="valid")
    # The latest of equally quiet stretches, so the utterance is as long as it may be; within
    # it, the quietest frame.
    stretch = len(stretches) - 1 - int(np.argmin(stretches[::-1]))
    frame = stretch + int(np.argmin(energy[stretch : stretch + STRETCH_FRAMES]))
    return earliest + frame * FRAME + FRAME // 2
