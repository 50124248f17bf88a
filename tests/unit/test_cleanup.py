import os
import time
from pathlib import Path

from shared.media import delete_files, stale_paths


def test_deleting_counts_what_was_there_and_ignores_what_was_not(tmp_path: Path) -> None:
    present = tmp_path / "a.wav"
    present.write_bytes(b"x")
    assert delete_files((present, tmp_path / "gone.wav")) == 1
    assert not present.exists()
    assert delete_files((present,)) == 0


def test_only_files_older_than_the_limit_are_stale(tmp_path: Path) -> None:
    uploads, audio = tmp_path / "uploads", tmp_path / "audio"
    uploads.mkdir()
    old, fresh = uploads / "old", uploads / "fresh"
    for path in (old, fresh):
        path.write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert stale_paths((uploads, audio), older_than_seconds=600) == (old,)


def test_a_folder_of_pieces_is_stale_as_a_whole(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    job = audio / ("a" * 32)
    job.mkdir(parents=True)
    (job / "piece-00000.wav").write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    os.utime(job, (an_hour_ago, an_hour_ago))
    assert stale_paths((audio,), older_than_seconds=600) == (job,)
