"""Cutting recordings at pauses, on real speech."""

import contextlib
import itertools
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests import media
from transcoder.convert import to_wav
from transcoder.pieces import (
    SEARCH_FROM,
    SHORTEST_PIECE_SECONDS,
    Cutter,
    Piece,
    PieceFiles,
    plan_pieces,
    write_piece,
)


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


@pytest.fixture(scope="module")
def story_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About two minutes of speech."""
    folder = tmp_path_factory.mktemp("story")
    target = folder / "story.wav"
    to_wav(media.speak(media.STORY, folder / "spoken.wav"), target, 60, 3600)
    return target


def cut_as_it_arrives(audio: np.ndarray, cutter: Cutter, seed: int) -> list[Piece]:
    """The pieces `cutter` cuts from `audio` given in blocks of random sizes."""
    sizes = np.random.default_rng(seed).integers(1, 5 * 16_000, size=len(audio))
    pieces, at = [], 0
    for size in sizes:
        if at >= len(audio):
            break
        pieces += cutter.feed(audio[at : at + size])
        at += size
    return [*pieces, *cutter.finish()]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_cuts_are_the_same_however_the_audio_arrives(story_wav: Path, seed: int) -> None:
    whole = plan_pieces(story_wav, 30, first_seconds=15, slots=2)
    streamed = cut_as_it_arrives(samples(story_wav), Cutter(30, first_seconds=15, slots=2), seed)
    assert streamed == whole
    assert len(whole) >= 5


def test_the_first_piece_is_short_and_the_last_ones_shrink_to_share_the_rest(
    story_wav: Path,
) -> None:
    piece_seconds, slots = 30, 2
    pieces = plan_pieces(story_wav, piece_seconds, first_seconds=15, slots=slots)
    total = len(samples(story_wav)) / 16_000
    assert pieces[0].seconds <= 15
    assert all(piece.seconds <= piece_seconds for piece in pieces)
    for piece in pieces[1:-1]:
        rest = total - piece.offset_seconds
        # Its share of the rest among the slots (or the shortest), never less than 60 % of it.
        share = min(piece_seconds, max(rest / slots, SHORTEST_PIECE_SECONDS))
        assert share * SEARCH_FROM - 0.01 <= piece.seconds <= share + 0.01, piece
    shrunk = [piece for piece in pieces[1:] if piece.seconds < piece_seconds * SEARCH_FROM]
    assert len(shrunk) >= 2
    assert pieces[-1].seconds < SHORTEST_PIECE_SECONDS * (1 + SEARCH_FROM) + 0.01


def test_the_last_pieces_let_the_slots_finish_together(story_wav: Path) -> None:
    """Slots that take the pieces in order, each as long as its audio: with the last pieces
    cut for two slots, the slots end closer together than with pieces all of one length."""
    audio = np.concatenate([samples(story_wav)] * 4)

    def gap_at_the_end(pieces: list[Piece]) -> float:
        slots = [0.0, 0.0]
        for piece in pieces:
            slots[slots.index(min(slots))] += piece.seconds
        return max(slots) - min(slots)

    usual = cut_as_it_arrives(audio, Cutter(60), seed=0)
    shared = cut_as_it_arrives(audio, Cutter(60, slots=2), seed=0)
    assert gap_at_the_end(shared) < SHORTEST_PIECE_SECONDS * (1 + SEARCH_FROM)
    assert gap_at_the_end(shared) < gap_at_the_end(usual)


def test_pieces_are_written_as_the_audio_arrives(story_wav: Path, tmp_path: Path) -> None:
    audio = samples(story_wav)
    files = PieceFiles(
        tmp_path / "spool.wav", lambda index: tmp_path / f"piece-{index}.wav", Cutter(30)
    )
    written_early = []
    for at in range(0, len(audio), 16_000 * 10):
        pieces = files.feed(audio[at : at + 16_000 * 10].tobytes())
        written_early += [tmp_path / f"piece-{piece.index}.wav" for piece in pieces]
        assert all(path.exists() for path in written_early)
    rest = files.finish()
    assert written_early
    assert len(written_early) + len(rest) == len(plan_pieces(story_wav, 30))
    count = len(written_early) + len(rest)
    pieces_audio = [samples(tmp_path / f"piece-{index}.wav") for index in range(count)]
    assert np.array_equal(np.concatenate(pieces_audio), audio)
    assert files.seconds == pytest.approx(len(audio) / 16_000)


def test_audio_never_cut_becomes_its_one_piece(paragraph_wav: Path, tmp_path: Path) -> None:
    spool, piece = tmp_path / "spool.wav", tmp_path / "piece-0.wav"
    files = PieceFiles(spool, lambda _index: piece, Cutter(600))
    audio = samples(paragraph_wav)
    assert files.feed(audio[:1001].tobytes()[:-1]) == []  # half a sample waits for the rest
    assert files.feed(audio[1000:].tobytes()[1:]) == []
    [whole] = files.finish()
    assert (whole.start_frame, whole.frames) == (0, len(audio))
    assert np.array_equal(samples(piece), audio)
    assert not spool.exists()


def test_closing_waits_for_a_feed_still_running_in_its_thread(
    story_wav: Path, tmp_path: Path
) -> None:
    """A timed-out conversion stops waiting for `feed`, not the thread running it: the spool
    must not be closed under it."""
    writing = threading.Event()
    go_on = threading.Event()

    def piece_path(index: int) -> Path:
        writing.set()
        assert go_on.wait(10)
        return tmp_path / f"piece-{index}.wav"

    files = PieceFiles(tmp_path / "spool.wav", piece_path, Cutter(30))
    with ThreadPoolExecutor(2) as threads:
        fed = threads.submit(files.feed, samples(story_wav).tobytes())
        assert writing.wait(10)
        closed = threads.submit(files.close)
        with pytest.raises(TimeoutError):
            closed.result(timeout=0.5)
        go_on.set()
        assert fed.result(timeout=10)
        closed.result(timeout=10)
    assert (tmp_path / "piece-0.wav").exists()
