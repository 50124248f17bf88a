"""Where a job's files live. Names come from the job id only, never from anything a client sent."""

import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from shared.jobs.models import JOB_ID_PATTERN

_JOB_ID = re.compile(JOB_ID_PATTERN)


@dataclass(frozen=True)
class MediaPaths:
    root: Path

    def upload(self, job_id: str) -> Path:
        return self.root / "uploads" / _checked(job_id)

    def audio_folder(self, job_id: str) -> Path:
        """The job's WAV files: the whole conversion while it is cut, then its pieces."""
        return self.root / "audio" / _checked(job_id)

    def whole_audio(self, job_id: str) -> Path:
        return self.audio_folder(job_id) / "whole.wav"

    def piece(self, job_id: str, index: int) -> Path:
        return self.audio_folder(job_id) / f"piece-{index:05d}.wav"

    def fetched(self, name: str) -> Path:
        """A service's copy of a stored file (GridFS), named after it: `{job_id}-upload.1a2b`."""
        return self.root / "fetched" / f"{name.replace('/', '-')}.{uuid.uuid4().hex[:8]}"

    def of_job(self, job_id: str) -> tuple[Path, ...]:
        return self.upload(job_id), self.audio_folder(job_id)

    @property
    def folders(self) -> tuple[Path, ...]:
        return self.root / "uploads", self.root / "audio", self.root / "fetched"

    def create_folders(self) -> None:
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)


def _checked(job_id: str) -> str:
    # Ids come from events and URLs; only a well-formed one may become part of a path.
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


def job_of(path: Path) -> str | None:
    """The job a file or folder of the media folder belongs to: every name starts with its id."""
    job_id = path.name[:32]
    return job_id if _JOB_ID.fullmatch(job_id) else None


def stale_paths(folders: tuple[Path, ...], older_than_seconds: float) -> tuple[Path, ...]:
    """What in `folders` was not touched for `older_than_seconds` (files, and the folders of a
    job's audio pieces)."""
    cutoff = time.time() - older_than_seconds
    return tuple(
        path
        for folder in folders
        if folder.is_dir()
        for path in folder.iterdir()
        if _untouched_since(path, cutoff)
    )


def _untouched_since(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:  # deleted meanwhile
        return False


def delete_files(paths: tuple[Path, ...]) -> int:
    """Delete what exists of `paths` (files, or folders with what is in them) and return how
    many were there; a missing one is no error."""
    deleted = 0
    for path in paths:
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        deleted += 1
    return deleted
