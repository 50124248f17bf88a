"""How job documents are read back and picked out, for every part of the job store."""

from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from shared.jobs.models import Job, JobStatus, UtcDatetime, as_utc

# A date as read back raw: the MongoDB stand-in may hand one back as its ISO string.
RAW_DATE: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)
UNFINISHED = [str(status) for status in JobStatus if not status.is_final]


def stored_before(moment: Any, limit: datetime) -> bool:
    """Whether a stored date is before `limit`. Compared here, not in the query: the MongoDB
    stand-in keeps dates written by `$set` as strings, which a range query does not compare."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return isinstance(moment, datetime) and as_utc(moment) < limit


def to_job(document: dict[str, Any]) -> Job:
    job = Job.model_validate({**document, "job_id": document["_id"]})
    if job.progress is not None:
        # Counted from the pieces recognized, never from a counter beside them: whatever runs
        # twice, the job is complete exactly when every piece of the plan is in the set.
        recognized = document.get("recognized_pieces") or {}
        job.progress.pieces_done = len(recognized)
        job.progress.audio_seconds_done = float(sum(recognized.values()))
        if job.status.is_final:
            job.progress.eta_seconds = None  # nothing is left to wait for
    return job


def unfinished_of(owner: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {"status": {"$in": UNFINISHED}}
    if owner is not None:
        query["owner"] = owner
    return query
