"""Where a job's files live. Names come from the job id only, never from anything a client sent."""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from shared.jobs import JOB_ID_PATTERN

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

    def of_job(self, job_id: str) -> tuple[Path, ...]:
        return self.upload(job_id), self.audio_folder(job_id)

    @property
    def folders(self) -> tuple[Path, ...]:
        return self.root / "uploads", self.root / "audio"

    def create_folders(self) -> None:
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)


def _checked(job_id: str) -> str:
    # Ids come from events and URLs; only a well-formed one may become part of a path.
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


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
