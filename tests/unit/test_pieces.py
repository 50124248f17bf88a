"""Cutting recordings at pauses, on real speech."""

import contextlib
import itertools
import wave
from pathlib import Path

import numpy as np
import pytest

from tests import media
from transcoder.convert import to_wav
from transcoder.pieces import plan_pieces, write_piece


@pytest.fixture(scope="module")
def paragraph_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("paragraph")
    spoken = media.speak(media.PARAGRAPH, folder / "spoken.wav")
    target = folder / "paragraph.wav"
    to_wav(spoken, target, timeout_seconds=60, max_seconds=3600)
    return target


def samples(path: Path) -> np.ndarray:
    with contextlib.closing(wave.open(str(path), "rb")) as audio:
        return np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2")


def test_a_recording_is_cut_into_contiguous_pieces_no_longer_than_asked(
    paragraph_wav: Path,
) -> None:
    pieces = plan_pieces(paragraph_wav, piece_seconds=8)
    total = len(samples(paragraph_wav))
    assert len(pieces) >= 4
    assert [piece.index for piece in pieces] == list(range(len(pieces)))
    assert pieces[0].start_frame == 0
    for before, after in itertools.pairwise(pieces):
        assert before.start_frame + before.frames == after.start_frame
    assert pieces[-1].start_frame + pieces[-1].frames == total
    assert all(piece.seconds <= 8 for piece in pieces)
    assert all(piece.seconds >= 8 * 0.6 for piece in pieces[:-1])


def test_every_cut_falls_in_a_pause(paragraph_wav: Path) -> None:
    audio = samples(paragraph_wav).astype(np.float64)
    loud = np.mean(audio**2)
    for piece in plan_pieces(paragraph_wav, piece_seconds=8)[1:]:
        around = audio[piece.start_frame - 800 : piece.start_frame + 800]  # 50 ms either side
        assert np.mean(around**2) < loud / 100, f"cut at {piece.offset_seconds:.2f} s"


def test_a_recording_shorter_than_a_piece_stays_whole(paragraph_wav: Path) -> None:
    [piece] = plan_pieces(paragraph_wav, piece_seconds=600)
    assert (piece.start_frame, piece.frames) == (0, len(samples(paragraph_wav)))


def test_the_pieces_written_hold_the_recording_exactly(paragraph_wav: Path, tmp_path: Path) -> None:
    pieces = plan_pieces(paragraph_wav, piece_seconds=8)
    written = []
    for piece in pieces:
        target = tmp_path / f"piece-{piece.index}.wav"
        write_piece(paragraph_wav, piece, target)
        written.append(samples(target))
    assert np.array_equal(np.concatenate(written), samples(paragraph_wav))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        f"piece-{piece.index}.wav" for piece in pieces
    )
