import time
from pathlib import Path

from shared.media import delete_files


def delete_stale_files(folders: tuple[Path, ...], older_than_seconds: float) -> int:
    """Delete what was not touched for `older_than_seconds` (files, and the folders of a job's
    audio pieces): by then every job has ended and been cleaned up, so what is left was orphaned
    (an upload cut off by a crash, say)."""
    cutoff = time.time() - older_than_seconds
    stale = tuple(
        path
        for folder in folders
        if folder.is_dir()
        for path in folder.iterdir()
        if path.stat().st_mtime < cutoff
    )
    return delete_files(stale)
