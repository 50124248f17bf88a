"""The job list: which jobs a page shows, and the key it pages on."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from shared.jobs.documents import to_job
from shared.jobs.models import Job, JobStatus, as_utc


@dataclass(frozen=True)
class Listing:
    """Which jobs a page of the job list shows; `after` is the `list_key` of the last job of the
    page before."""

    owner: str | None = None
    status: JobStatus | None = None
    engine: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    after: str | None = None


def list_key(job: Job) -> str:
    """The job's creation time and id as one string that sorts as they do, newest last. The job
    list pages on it rather than on the date itself: the MongoDB stand-in compares dates only
    to the second (and takes strings that look like ISO dates for dates), so it is digits."""
    return f"{time_key(job.created_at)}/{job.job_id}"


def time_key(moment: datetime) -> str:
    return as_utc(moment).astimezone(UTC).strftime("%Y%m%d%H%M%S%f")


LIST_KEY = re.compile(r"\d{20}/[0-9a-f]{32}")
# Sorts after the "/" and hex id that follow a time in a list key.
_AFTER_EVERY_ID = "/~"


class JobPages:
    """The job store's pages of the job list."""

    _jobs: AsyncCollection[dict[str, Any]]

    async def page(self, listing: Listing, limit: int) -> list[Job]:
        """Up to `limit` jobs that match `listing`, newest first, without their transcripts."""
        query: dict[str, Any] = {}
        for name, value in (
            ("owner", listing.owner),
            ("status", listing.status),
            ("engine", listing.engine),
        ):
            if value is not None:
                query[name] = str(value)
        bounds: dict[str, str] = {}
        if listing.created_after is not None:
            bounds["$gt"] = time_key(listing.created_after) + _AFTER_EVERY_ID
        upper = [time_key(listing.created_before)] if listing.created_before else []
        upper += [listing.after] if listing.after is not None else []
        if upper:
            bounds["$lt"] = min(upper)
        if bounds:
            query["list_key"] = bounds
        cursor = (
            self._jobs.find(query, {"segments": 0, "text": 0}).sort([("list_key", -1)]).limit(limit)
        )
        return [to_job(document) async for document in cursor]
