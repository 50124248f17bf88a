"""Turn detection for live sessions: the PCM16 a client streams, resampled to 16 kHz, cut into
utterances where the speaker pauses.

Pauses are heard by Silero VAD (the copy faster-whisper ships, run on onnxruntime), fed window
by window with its state carried over, so each window is judged once. Synchronous and CPU-bound:
the gateway runs it in a worker thread. Only the current utterance (or, between utterances, the
padding kept before speech) is held, so a session's memory does not grow with its length.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr

from gateway.live.quiet_cut import quietest_point

RATE = 16000
WINDOW = 512  # samples at 16 kHz: 32 ms, the window Silero VAD judges
CONTEXT = 64  # samples of the window before, which the model looks at too
# Below this an utterance is too short to hold a word (OpenAI's rule for a manual commit).
MIN_COMMIT_MS = 100
# Whisper hears 30 s at a time; an utterance that long is cut even without a pause.
MAX_UTTERANCE_SECONDS = 30.0
# Utterances are cut at their quietest point once this long, so that a speaker who never pauses
# still gets final text every so often (STT_LIVE_UTTERANCE_SECONDS).
CUT_AFTER_SECONDS = 15.0
# An interim pass hears at least this much of the utterance.
MIN_INTERIM_MS = 500


@dataclass(frozen=True)
class ServerVad:
    """OpenAI's `server_vad` turn detection settings, with its defaults."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


@dataclass(frozen=True)
class SpeechStarted:
    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    audio_end_ms: int


@dataclass(frozen=True)
class Utterance:
    """16 kHz mono PCM16 of one utterance, timed from the start of the session's audio."""

    samples: np.ndarray[Any, np.dtype[np.int16]]
    start_ms: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE

    @property
    def end_ms(self) -> int:
        return self.start_ms + round(self.seconds * 1000)


Happening = SpeechStarted | SpeechStopped | Utterance


def _ms(samples: int) -> int:
    return samples * 1000 // RATE


@dataclass
class _Vad:
    """Silero VAD's state between windows."""

    model: Any
    h: np.ndarray[Any, np.dtype[np.float32]] = field(
        default_factory=lambda: np.zeros((1, 1, 128), np.float32)
    )
    c: np.ndarray[Any, np.dtype[np.float32]] = field(
        default_factory=lambda: np.zeros((1, 1, 128), np.float32)
    )
    context: np.ndarray[Any, np.dtype[np.float32]] = field(
        default_factory=lambda: np.zeros(CONTEXT, np.float32)
    )

    def probabilities(self, samples: np.ndarray[Any, np.dtype[np.int16]]) -> list[float]:
        """Speech probability of each whole window of `samples` (a multiple of WINDOW)."""
        windows = (samples.astype(np.float32) / 32768.0).reshape(-1, WINDOW)
        contexts = np.concatenate([self.context[None, :], windows[:-1, -CONTEXT:]])
        output, self.h, self.c = self.model.session.run(
            None, {"input": np.concatenate([contexts, windows], axis=1), "h": self.h, "c": self.c}
        )
        self.context = windows[-1, -CONTEXT:].copy()
        return [float(p) for p in np.asarray(output).ravel()]


def vad_model() -> Any:
    """Silero VAD, loaded once per process (faster-whisper caches it)."""
    from faster_whisper.vad import get_vad_model

    return get_vad_model()


class Turns:
    """One session's audio: `append` PCM16 at the session's rate, get what happened in it."""

    def __init__(
        self,
        input_rate: int,
        vad: ServerVad | None,
        start_sample: int = 0,
        max_utterance_seconds: float = MAX_UTTERANCE_SECONDS,
        cut_after_seconds: float = CUT_AFTER_SECONDS,
    ) -> None:
        """`start_sample`: where this audio starts in the session (at 16 kHz), for timing."""
        self._input_rate = input_rate
        self._resampler = self._new_resampler()
        self._settings = vad
        self._vad = _Vad(vad_model()) if vad is not None else None
        self._max_samples = round(max_utterance_seconds * RATE)
        self._cut_after = round(min(cut_after_seconds, max_utterance_seconds) * RATE)
        self._audio = np.zeros(0, np.int16)
        self._audio_from = start_sample  # the session sample where self._audio starts
        self._judged = start_sample  # the session sample up to which the VAD has judged the audio
        self._speech_from: int | None = None  # where the utterance under way starts
        self._quiet_from: int | None = None  # where the silence that may end it started

    @property
    def total_samples(self) -> int:
        return self._audio_from + len(self._audio)

    @property
    def seconds(self) -> float:
        """How much audio the session has had, in seconds."""
        return self.total_samples / RATE

    @property
    def speaking(self) -> bool:
        return self._speech_from is not None

    def so_far(self) -> bytes | None:
        """PCM16 of the utterance under way, for an interim pass; None between utterances or
        while it is too short to hold a word."""
        if self._speech_from is None:
            return None
        samples = self._audio[self._speech_from - self._audio_from :]
        if _ms(len(samples)) < MIN_INTERIM_MS:
            return None
        return samples.astype("<i2").tobytes()

    def append(self, pcm: bytes) -> list[Happening]:
        samples = np.frombuffer(pcm, dtype="<i2")
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        self._audio = np.concatenate([self._audio, samples.astype(np.int16)])
        if self._vad is None:
            return self._cut_if_too_long()
        happenings = self._detect(self._vad)
        self._forget_before_speech()
        return happenings

    def commit(self) -> list[Utterance]:
        """What is buffered, as utterances of at most the longest length, in order; a piece
        under MIN_COMMIT_MS is dropped (so nothing comes of a buffer that short)."""
        self._flush_resampler()
        start = self._speech_from if self._speech_from is not None else self._audio_from
        self._speech_from = self._quiet_from = None
        utterances = []
        while start < self.total_samples:
            end = min(start + self._max_samples, self.total_samples)
            utterances.append(self._cut(start, end))
            start = end
        return [u for u in utterances if _ms(len(u.samples)) >= MIN_COMMIT_MS]

    def clear(self) -> None:
        self._cut(self.total_samples, self.total_samples)
        self._speech_from = self._quiet_from = None

    def finish(self) -> list[Utterance]:
        """At the session's end: the utterance under way, if speech was heard (or, without
        turn detection, whatever was not committed)."""
        if self._vad is not None and self._speech_from is None:
            return []
        return self.commit()

    def _new_resampler(self) -> Any:
        if self._input_rate == RATE:
            return None
        return soxr.ResampleStream(self._input_rate, RATE, 1, dtype="int16")

    def _flush_resampler(self) -> None:
        """Take the last few milliseconds the resampler holds back, and start it afresh."""
        if self._resampler is None:
            return
        tail = self._resampler.resample_chunk(np.zeros(0, np.int16), last=True)
        self._audio = np.concatenate([self._audio, tail.astype(np.int16)])
        self._resampler = self._new_resampler()

    def _detect(self, vad: _Vad) -> list[Happening]:
        assert self._settings is not None
        whole = (self.total_samples - self._judged) // WINDOW * WINDOW
        if whole == 0:
            return []
        offset = self._judged - self._audio_from
        probabilities = vad.probabilities(self._audio[offset : offset + whole])
        happenings: list[Happening] = []
        threshold = self._settings.threshold
        quiet_below = max(threshold - 0.15, 0.01)
        padding = self._settings.prefix_padding_ms * RATE // 1000
        silence = self._settings.silence_duration_ms * RATE // 1000
        for number, probability in enumerate(probabilities):
            start = self._judged + number * WINDOW
            end = start + WINDOW
            if self._speech_from is None:
                if probability >= threshold:
                    self._speech_from = max(start - padding, self._audio_from)
                    self._quiet_from = None
                    happenings.append(SpeechStarted(_ms(self._speech_from)))
                continue
            if probability >= threshold:
                self._quiet_from = None
            elif probability < quiet_below and self._quiet_from is None:
                self._quiet_from = start
            if self._quiet_from is not None and end - self._quiet_from >= silence:
                # The utterance keeps a little of the silence, as Whisper was trained on.
                tail = min(end, self._quiet_from + padding)
                happenings += [SpeechStopped(_ms(end)), self._cut(self._speech_from, tail)]
                self._speech_from = self._quiet_from = None
            elif end - self._speech_from >= self._cut_after:
                happenings += self._cut_at_quietest(end)
        self._judged += whole
        return happenings

    def _cut_at_quietest(self, end: int) -> list[Happening]:
        """The utterance under way, too long, cut at its quietest point in its second half
        (before `end`); the speech after that point starts the next utterance."""
        assert self._speech_from is not None
        start = self._speech_from
        held = self._audio[start - self._audio_from : end - self._audio_from]
        cut = start + quietest_point(held, (end - start) // 2)
        if self._quiet_from is not None and self._quiet_from < cut:
            self._quiet_from = None
        utterance = self._cut(start, cut)
        self._speech_from = cut
        return [SpeechStopped(_ms(cut)), utterance, SpeechStarted(_ms(cut))]

    def _cut_if_too_long(self) -> list[Happening]:
        """Without turn detection: every whole utterance of the longest length the buffer
        holds, so what stays buffered is always shorter than that."""
        cuts: list[Happening] = []
        while len(self._audio) >= self._max_samples:
            cuts.append(self._cut(self._audio_from, self._audio_from + self._max_samples))
        if cuts:
            self._audio = self._audio.copy()  # not a view that keeps the whole message alive
        return cuts

    def _cut(self, start: int, end: int) -> Utterance:
        """The session's audio from `start` to `end`; what lies before `end` is forgotten."""
        samples = self._audio[start - self._audio_from : end - self._audio_from].copy()
        self._audio = self._audio[end - self._audio_from :]
        self._audio_from = end
        return Utterance(samples, _ms(start))

    def _forget_before_speech(self) -> None:
        """Between utterances keep only the padding that goes before the next one."""
        if self._speech_from is not None or self._settings is None:
            return
        keep_from = max(
            self._judged - self._settings.prefix_padding_ms * RATE // 1000, self._audio_from
        )
        self._audio = self._audio[keep_from - self._audio_from :]
        self._audio_from = keep_from
