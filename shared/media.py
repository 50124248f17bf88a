"""Where a job's files live. Names come from the job id only, never from anything a client sent."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MediaPaths:
    root: Path

    def upload(self, job_id: str) -> Path:
        return self.root / "uploads" / job_id

    def audio(self, job_id: str) -> Path:
        return self.root / "audio" / f"{job_id}.wav"

    def of_job(self, job_id: str) -> tuple[Path, ...]:
        return self.upload(job_id), self.audio(job_id)

    @property
    def folders(self) -> tuple[Path, ...]:
        return self.root / "uploads", self.root / "audio"

    def create_folders(self) -> None:
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)


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
