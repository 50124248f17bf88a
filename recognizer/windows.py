"""Whisper's encoder paid for the audio it is given, not for a 30-s window of padding.

faster-whisper pads every stretch it decodes (and every stretch it detects the language of) to
Whisper's 30-s window with zeros, and the encoder's cost grows faster than the window: a 3-s
utterance cost as much as 30 s of speech. CTranslate2 encodes shorter windows, so that padding
is cut before the encoder sees it, down to a 20-s window; silence in the audio itself is kept.
That halved Whisper base's time on a short utterance. A 10-s window cut it to a third and kept
English words, but lost German ones and turned a Spanish translation's "good morning" into
"good days" (docs/performance.md).
"""

import math
from typing import Any

import numpy as np
from faster_whisper import WhisperModel

from recognizer.spectrogram import BlockwiseFeatureExtractor

WINDOW_STEP_FRAMES = 1000
"""10 s of Whisper's 10-ms frames: windows are whole multiples of it."""
SHORTEST_WINDOW_FRAMES = 2000
"""20 s: in shorter windows Whisper base lost words of other languages than English."""


def trimmed(features: np.ndarray, shortest_frames: int = SHORTEST_WINDOW_FRAMES) -> np.ndarray:
    """`features` (..., mel bands, frames) without the padding after its last step of audio, in
    a window of at least `shortest_frames`. A batch keeps the window its longest member needs.
    faster-whisper pads with exact zeros, and no frame of audio is zero in every band: Whisper's
    log-mel scale puts even digital silence below zero."""
    frames = features.shape[-1]
    unpadded = np.flatnonzero(features.reshape(-1, frames).any(axis=0))
    audio_frames = int(unpadded[-1]) + 1 if unpadded.size else 1
    kept = max(math.ceil(audio_frames / WINDOW_STEP_FRAMES) * WINDOW_STEP_FRAMES, shortest_frames)
    return features[..., : min(kept, frames)]


class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]  # faster-whisper is untyped
    """faster-whisper's model, whose encoder gets each window without its padding (the batched
    pipeline and language detection encode through it too), and whose spectrogram is computed
    in blocks."""

    shortest_window_frames = SHORTEST_WINDOW_FRAMES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.feature_extractor = BlockwiseFeatureExtractor(**self.feat_kwargs)

    def encode(self, features: np.ndarray) -> Any:
        return super().encode(trimmed(features, self.shortest_window_frames))
