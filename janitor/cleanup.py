import time
from pathlib import Path


def delete_files(paths: tuple[Path, ...]) -> int:
    """Delete what exists of `paths` and return how many were there; a missing file is no error."""
    deleted = 0
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        deleted += 1
    return deleted


def delete_stale_files(folders: tuple[Path, ...], older_than_seconds: float) -> int:
    """Delete files not touched for `older_than_seconds`: by then every job has ended and been
    cleaned up, so what is left was orphaned (an upload cut off by a crash, say)."""
    cutoff = time.time() - older_than_seconds
    stale = tuple(
        path
        for folder in folders
        if folder.is_dir()
        for path in folder.iterdir()
        if path.is_file() and path.stat().st_mtime < cutoff
    )
    return delete_files(stale)
