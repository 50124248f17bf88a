"""Cutting a long recording into pieces at pauses, so several slots can recognize it at once,
while ffmpeg is still converting it: each piece is cut as soon as the audio that decides where
it ends has arrived. Synchronous: run it in an executor. The audio is spooled to a file, never
held whole in memory.

Pauses are found by short-time energy: each cut goes to the quietest stretch near where the
piece should end. In speech that is a pause between words or sentences; relative to its
surroundings rather than to a fixed threshold, so it works on noisy recordings too.

How long each piece should be: the length asked (STT_PIECE_SECONDS), but the first piece is
short, so that the first words come back seconds after the upload, and the last pieces shrink
with what is left: each takes its share of the rest among the slots that recognize it (guided
self-scheduling), so the slots finish together rather than one working through a full piece
while the others wait. A piece is cut only once the audio reaches far enough past it that what
follows could not change where it ends, so the cuts are the same however the audio arrives: a
transcoder that runs again cuts the same pieces.
"""

import contextlib
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.wav import wav_writer
from transcoder.convert import SAMPLE_RATE

FRAME_SECONDS = 0.01
# Smoothing over about a short pause, so a stop consonant inside a word is not taken for one.
QUIET_SPAN_SECONDS = 0.3
# A cut is looked for in the last part of each piece: pieces last 60-100 % of the length asked.
SEARCH_FROM = 0.6
BLOCK_SECONDS = 30
FIRST_PIECE_SECONDS = 15.0
SHORTEST_PIECE_SECONDS = 10.0
# The audio read ahead of a cut grows with the slots; beyond this many the last pieces are
# already a few seconds long.
MAX_SLOTS = 8


@dataclass(frozen=True)
class Piece:
    index: int
    start_frame: int
    frames: int
    sample_rate: int

    @property
    def offset_seconds(self) -> float:
        return self.start_frame / self.sample_rate

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


class Cutter:
    """Where to cut 16-bit mono audio given as it arrives. `first_seconds` bounds the first
    piece, `slots` is how many slots share the recording (1: only the length asked counts)."""

    def __init__(
        self,
        piece_seconds: float,
        *,
        first_seconds: float | None = None,
        slots: int = 1,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        if not 1 <= slots <= MAX_SLOTS:
            raise ValueError(f"slots must be 1 to {MAX_SLOTS}, not {slots}")
        self.sample_rate = sample_rate
        self.samples = 0
        self._frame = round(FRAME_SECONDS * sample_rate)
        self._longest = int(piece_seconds / FRAME_SECONDS)
        first = piece_seconds if first_seconds is None else first_seconds
        self._first = min(self._longest, int(first / FRAME_SECONDS))
        self._shortest = min(self._longest, int(SHORTEST_PIECE_SECONDS / FRAME_SECONDS))
        self._slots = slots
        self._span = max(1, round(QUIET_SPAN_SECONDS / FRAME_SECONDS))
        self._index = 0
        # In frames of FRAME_SECONDS: where the next piece starts, and the energy from there on.
        self._start = 0
        self._energy = np.zeros(0, dtype=np.float32)
        self._leftover = np.zeros(0, dtype="<i2")

    def feed(self, samples: np.ndarray) -> list[Piece]:
        """Take the next samples; the pieces whose end they decide."""
        self.samples += len(samples)
        joined = np.concatenate([self._leftover, samples])
        whole = len(joined) // self._frame * self._frame
        frames = joined[:whole].astype(np.float32).reshape(-1, self._frame)
        self._energy = np.concatenate([self._energy, np.mean(frames * frames, axis=1)])
        self._leftover = joined[whole:]
        return self._cut(ended=False)

    def finish(self) -> list[Piece]:
        """The audio has ended: the pieces left, the last one to the end of the audio."""
        pieces = self._cut(ended=True)
        start = self._start * self._frame
        return [*pieces, Piece(self._index, start, self.samples - start, self.sample_rate)]

    def _cut(self, ended: bool) -> list[Piece]:
        pieces = []
        while (end := self._next_end(ended)) is not None:
            pieces.append(
                Piece(
                    self._index,
                    self._start * self._frame,
                    (end - self._start) * self._frame,
                    self.sample_rate,
                )
            )
            self._energy = self._energy[end - self._start :]
            self._start = end
            self._index += 1
        return pieces

    def _next_end(self, ended: bool) -> int | None:
        """Where the next piece ends (in frames); None if it is the last, or if that is not
        known yet."""
        rest = len(self._energy)
        usual = self._first if self._index == 0 else self._longest
        if not ended:
            # Until the audio reaches this far, what is left could still make this piece
            # shorter (its share of the rest) or the last.
            if rest <= max(self._slots * usual, self._longest):
                return None
            asked = usual
        else:
            asked = int(min(usual, max(rest / self._slots, self._shortest)))
            if self._is_last(rest, asked):
                return None
        start = int(asked * SEARCH_FROM)
        window = self._energy[start:asked]
        smoothed = np.convolve(window, np.ones(self._span) / self._span, mode="same")
        return self._start + start + _middle_of_last_quietest(smoothed)

    def _is_last(self, rest: int, asked: int) -> bool:
        if rest <= asked:
            return True
        if rest > self._longest:
            return False
        # A recording no longer than a piece stays whole, and a rest is not cut where the
        # piece after the cut could be shorter than any cut one.
        return self._index == 0 or rest < asked + self._shortest * SEARCH_FROM


def _middle_of_last_quietest(smoothed: np.ndarray) -> int:
    """The middle of the quietest stretch; of several equally quiet (digital silence), the last,
    which keeps the piece closest to the length asked for."""
    quiet = np.flatnonzero(smoothed <= smoothed.min() * (1 + 1e-6) + 1e-9)
    gaps = np.flatnonzero(np.diff(quiet) > 1)
    first = quiet[gaps[-1] + 1] if len(gaps) else quiet[0]
    return int(first + quiet[-1]) // 2


class PieceFiles:
    """A recording's audio as ffmpeg produces it (16-bit mono PCM): spooled to a WAV file at
    `spool`, and each piece written to `piece_path(index)` as soon as the cutter knows where it
    ends. Call `close` when done; the spool is the caller's to delete.

    Its methods run in executor threads, one call at a time: a caller that stops waiting for
    `feed` (a timeout) cannot stop the thread, so `close` waits for it to end before closing."""

    def __init__(self, spool: Path, piece_path: Callable[[int], Path], cutter: Cutter) -> None:
        spool.parent.mkdir(parents=True, exist_ok=True)
        self._spool = spool
        self._piece_path = piece_path
        self._cutter = cutter
        # Written over many calls, and closed by `close`.
        self._file = spool.open("wb")
        self._wav = wave.open(self._file, "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(cutter.sample_rate)
        self._odd_byte = b""
        self._lock = threading.Lock()

    @property
    def seconds(self) -> float:
        """How much audio has arrived."""
        return self._cutter.samples / self._cutter.sample_rate

    def feed(self, pcm: bytes) -> list[Piece]:
        """Spool `pcm`; the pieces it completed, written."""
        with self._lock:
            return self._feed(pcm)

    def _feed(self, pcm: bytes) -> list[Piece]:
        pcm, self._odd_byte = _whole_samples(self._odd_byte + pcm)
        # The header is rewritten on each write: the spool can be read as a WAV at any time.
        self._wav.writeframes(pcm)
        self._file.flush()
        return self._written(self._cutter.feed(np.frombuffer(pcm, dtype="<i2")))

    def finish(self) -> list[Piece]:
        """The audio has ended: the pieces left, written. A recording never cut becomes its
        one piece by renaming the spool."""
        with self._lock:
            self._close()
            pieces = self._cutter.finish()
            if pieces == [Piece(0, 0, self._cutter.samples, self._cutter.sample_rate)]:
                self._spool.replace(self._piece_path(0))
                return pieces
            return self._written(pieces)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if not self._file.closed:
            self._wav.close()
            self._file.close()

    def _written(self, pieces: list[Piece]) -> list[Piece]:
        for piece in pieces:
            write_piece(self._spool, piece, self._piece_path(piece.index))
        return pieces


def _whole_samples(pcm: bytes) -> tuple[bytes, bytes]:
    cut = len(pcm) - len(pcm) % 2
    return pcm[:cut], pcm[cut:]


def plan_pieces(
    wav: Path, piece_seconds: float, *, first_seconds: float | None = None, slots: int = 1
) -> list[Piece]:
    """Where to cut `wav` (16-bit mono) into pieces, as `Cutter` cuts it: of at most
    `piece_seconds`, at pauses."""
    with contextlib.closing(wave.open(str(wav), "rb")) as audio:
        cutter = Cutter(
            piece_seconds,
            first_seconds=first_seconds,
            slots=slots,
            sample_rate=audio.getframerate(),
        )
        pieces = []
        while block := audio.readframes(BLOCK_SECONDS * audio.getframerate()):
            pieces += cutter.feed(np.frombuffer(block, dtype="<i2"))
    return [*pieces, *cutter.finish()]


def write_piece(wav: Path, piece: Piece, target: Path) -> None:
    """Copy `piece` of `wav` (16-bit mono) into a WAV file of its own at `target`."""
    with (
        contextlib.closing(wave.open(str(wav), "rb")) as source,
        wav_writer(target, source.getframerate()) as output,
    ):
        source.setpos(piece.start_frame)
        remaining = piece.frames
        while remaining > 0:
            block = source.readframes(min(remaining, BLOCK_SECONDS * piece.sample_rate))
            if not block:
                break
            output.writeframes(block)
            remaining -= len(block) // source.getsampwidth()
