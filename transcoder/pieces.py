"""Cutting a long recording into pieces at pauses, so several slots can recognize it at once.
Synchronous: run it in an executor. The audio is read in blocks, never held whole in memory.

Pauses are found by short-time energy: each cut goes to the quietest stretch near where the
piece should end. In speech that is a pause between words or sentences; relative to its
surroundings rather than to a fixed threshold, so it works on noisy recordings too.
"""

import contextlib
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME_SECONDS = 0.01
# Smoothing over about a short pause, so a stop consonant inside a word is not taken for one.
QUIET_SPAN_SECONDS = 0.3
# A cut is looked for in the last part of each piece: pieces last 60-100 % of the length asked.
SEARCH_FROM = 0.6
BLOCK_SECONDS = 30


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


def plan_pieces(wav: Path, piece_seconds: float) -> list[Piece]:
    """Where to cut `wav` (16-bit mono) into pieces of at most `piece_seconds`, at pauses."""
    with contextlib.closing(wave.open(str(wav), "rb")) as audio:
        rate, total = audio.getframerate(), audio.getnframes()
        if total <= piece_seconds * rate:
            return [Piece(0, 0, total, rate)]
        energy = _frame_energy(audio)
    frame = round(FRAME_SECONDS * rate)
    span = max(1, round(QUIET_SPAN_SECONDS / FRAME_SECONDS))
    longest = int(piece_seconds / FRAME_SECONDS)
    cuts = [0]
    while len(energy) - cuts[-1] > longest:
        start = cuts[-1] + int(longest * SEARCH_FROM)
        window = energy[start : cuts[-1] + longest]
        smoothed = np.convolve(window, np.ones(span) / span, mode="same")
        cuts.append(start + _middle_of_last_quietest(smoothed))
    starts = [cut * frame for cut in cuts]
    ends = [*starts[1:], total]
    return [
        Piece(index, start, end - start, rate)
        for index, (start, end) in enumerate(zip(starts, ends, strict=True))
    ]


def _middle_of_last_quietest(smoothed: np.ndarray) -> int:
    """The middle of the quietest stretch; of several equally quiet (digital silence), the last,
    which keeps the piece closest to the length asked for."""
    quiet = np.flatnonzero(smoothed <= smoothed.min() * (1 + 1e-6) + 1e-9)
    gaps = np.flatnonzero(np.diff(quiet) > 1)
    first = quiet[gaps[-1] + 1] if len(gaps) else quiet[0]
    return int(first + quiet[-1]) // 2


def _frame_energy(audio: wave.Wave_read) -> np.ndarray:
    """Mean square amplitude of each 10 ms frame (a trailing partial frame is left out)."""
    frame = round(FRAME_SECONDS * audio.getframerate())
    energies = []
    leftover = np.zeros(0, dtype=np.int16)
    while block := audio.readframes(BLOCK_SECONDS * audio.getframerate()):
        samples = np.concatenate([leftover, np.frombuffer(block, dtype="<i2")])
        whole = len(samples) // frame * frame
        frames = samples[:whole].astype(np.float32).reshape(-1, frame)
        energies.append(np.mean(frames * frames, axis=1))
        leftover = samples[whole:]
    return np.concatenate(energies) if energies else np.zeros(0, dtype=np.float32)


def write_piece(wav: Path, piece: Piece, target: Path) -> None:
    """Copy `piece` of `wav` into a WAV file of its own at `target`."""
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.part")
    with (
        contextlib.closing(wave.open(str(wav), "rb")) as source,
        contextlib.closing(wave.open(str(partial), "wb")) as output,
    ):
        output.setparams(source.getparams())
        source.setpos(piece.start_frame)
        remaining = piece.frames
        while remaining > 0:
            block = source.readframes(min(remaining, BLOCK_SECONDS * piece.sample_rate))
            if not block:
                break
            output.writeframes(block)
            remaining -= len(block) // source.getsampwidth()
    partial.replace(target)
