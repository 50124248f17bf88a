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
