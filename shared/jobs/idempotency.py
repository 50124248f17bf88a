"""Idempotency keys: a retried upload that names the same key gets the job of its first try,
within a window (a TTL index ages the records out)."""

from datetime import timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.jobs.documents import stored_before
from shared.jobs.models import now

IDEMPOTENCY_WINDOW = timedelta(hours=24)


class IdempotencyRecords:
    """The job store's record of which request key created which job."""

    _requests: AsyncCollection[dict[str, Any]]

    async def claim_request(self, key: str, job_id: str) -> str | None:
        """Tie an idempotency `key` to `job_id`; if an earlier request within the window has it,
        leave it and return that request's job id instead."""
        document = {"_id": key, "job_id": job_id, "created_at": now()}
        try:
            await self._requests.insert_one(document)
            return None
        except DuplicateKeyError:
            earlier = await self._requests.find_one({"_id": key})
        if earlier is None or stored_before(earlier.get("created_at"), now() - IDEMPOTENCY_WINDOW):
            # Expired (a TTL index removes it in time; this does not wait for it): start over.
            await self._requests.update_one({"_id": key}, {"$set": document}, upsert=True)
            return None
        return str(earlier["job_id"])

    async def release_request(self, key: str, job_id: str) -> None:
        """Untie `key` from a request that did not become a job, so a retry may try again."""
        await self._requests.delete_one({"_id": key, "job_id": job_id})
