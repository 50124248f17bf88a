"""Whisper's encoder paid for the sound it is given, not for a 30-s window of padding.

faster-whisper pads every stretch it decodes to Whisper's 30-s window, and the encoder's cost
grows faster than the window: a 3-s utterance cost as much as 30 s of speech. CTranslate2
encodes shorter windows, so the padding past the sound is cut before the encoder sees it, down
to a 20-s window: that halved Whisper base's time on a short utterance. A 10-s window cut it to
a third and kept English words, but lost German ones and changed a Spanish translation's "good
morning" to "good days" (docs/performance.md).
"""

from typing import Any

import numpy as np
from faster_whisper import WhisperModel

WINDOW_STEP_FRAMES = 1000
"""10 s of Whisper's 10-ms frames: windows are whole multiples of it."""
SHORTEST_WINDOW_FRAMES = 2000


def trimmed(features: np.ndarray) -> np.ndarray:
    """`features` (..., mel bands, frames) without the padding that follows its last step with
    sound, in a window of at least `SHORTEST_WINDOW_FRAMES`. faster-whisper pads with exact
    zeros; a frame of real audio is never zero in every band, because Whisper's log-mel scale
    puts silence well below zero."""
    bands_and_frames = features.reshape(-1, features.shape[-1])
    heard = np.flatnonzero(bands_and_frames.any(axis=0))
    last = int(heard[-1]) + 1 if heard.size else 1
    kept = max(-(-last // WINDOW_STEP_FRAMES) * WINDOW_STEP_FRAMES, SHORTEST_WINDOW_FRAMES)
    return features[..., : min(kept, features.shape[-1])]


class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]  # faster-whisper is untyped
    """faster-whisper's model, whose encoder gets each window cut to its sound."""

    def encode(self, features: np.ndarray) -> Any:
        return super().encode(trimmed(features))
