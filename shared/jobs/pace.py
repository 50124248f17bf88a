"""What the queue estimates are made of: when waiting jobs were uploaded, how long recognition of
a piece takes lately, and how much audio waits."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from shared.jobs.documents import RAW_DATE, unfinished_of
from shared.jobs.models import JobStatus


class PaceStatistics:
    """The job store's figures of the backlog and of the pace of recognition."""

    _jobs: AsyncCollection[dict[str, Any]]

    async def waiting_since(self, engine: str) -> list[datetime]:
        """When the jobs of `engine` that wait to be recognized were uploaded, oldest first."""
        cursor = self._jobs.find(
            {
                "engine": engine,
                "status": {"$in": [str(JobStatus.QUEUED), str(JobStatus.TRANSCODING)]},
            },
            {"created_at": 1},
        )
        return sorted(
            [RAW_DATE.validate_python(document["created_at"]) async for document in cursor]
        )

    async def recognition_seconds_per_piece(self, engine: str, sample: int) -> float | None:
        """The mean recognition time of one piece (most jobs are one) over the last `sample`
        jobs the engine finished; None before there are any."""
        cursor = (
            self._jobs.find(
                {"engine": engine, "status": str(JobStatus.DONE)},
                {"recognition_seconds": 1, "progress": 1},
            )
            .sort("created_at", -1)
            .limit(sample)
        )
        paces = [
            document["recognition_seconds"]
            / ((document.get("progress") or {}).get("pieces_total") or 1)
            async for document in cursor
            if document.get("recognition_seconds")
        ]
        return sum(paces) / len(paces) if paces else None

    async def queued_audio_seconds(self, owner: str | None = None) -> float:
        """Seconds of audio accepted and not yet recognized (of `owner`'s jobs, if named); jobs
        whose length is not known yet count as nothing."""
        cursor = self._jobs.find(
            unfinished_of(owner), {"duration_seconds": 1, "recognized_pieces": 1}
        )
        total = 0.0
        async for document in cursor:
            done = sum((document.get("recognized_pieces") or {}).values())
            total += max((document.get("duration_seconds") or 0.0) - done, 0.0)
        return total
