"""The recognizers at work. Each registers in MongoDB and refreshes its entry every few seconds,
so the gateway knows which engines are served even while no recognizer consumes at that moment
(one is restarting, say), and operators can see the fleet."""

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from pymongo.asynchronous.database import AsyncDatabase

from shared.jobs.models import UtcDatetime, now
from shared.jobs.store import expire_after
from shared.provenance import ModelProvenance

HEARTBEAT_SECONDS = 5.0
# A recognizer not heard of for this long is taken for gone.
LIVE_WITHIN_SECONDS = 3 * HEARTBEAT_SECONDS
# An engine a recognizer served this recently is still accepted while none is live.
SERVED_WITHIN = timedelta(hours=1)
# The entry of a recognizer not heard of for this long is deleted (a TTL index).
FORGOTTEN_AFTER = timedelta(days=1)
VERSION = "1.1.0"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class RecognizerEntry(BaseModel):
    worker: str
    host: str
    pid: int
    engines: list[str]
    slots: int
    busy: int = 0
    version: str = VERSION
    started_at: UtcDatetime
    seen_at: UtcDatetime
    stopped_at: UtcDatetime | None = None
    problem: str | None = Field(None, description="Why it is unhealthy; None while it is not.")
    models: dict[str, ModelProvenance] = Field(
        default_factory=dict, description="What its slots loaded for each engine."
    )
    labels_speakers: bool = Field(
        False, description="Its speaker model is loaded: it labels speakers for its engines."
    )

    def is_live(self, moment: datetime) -> bool:
        recent = moment - self.seen_at < timedelta(seconds=LIVE_WITHIN_SECONDS)
        return self.stopped_at is None and recent


class Fleet:
    def __init__(self, database: AsyncDatabase[dict[str, Any]], namespace: str) -> None:
        # One collection per namespace: deployments that share a broker may share a database.
        self._entries = database[f"recognizers_{namespace.replace('-', '_')}"]

    async def ensure_indexes(self) -> None:
        await expire_after(self._entries, "seen_at", FORGOTTEN_AFTER.total_seconds())

    async def report(self, entry: RecognizerEntry) -> None:
        document = entry.model_dump(exclude={"worker"})
        await self._entries.update_one({"_id": entry.worker}, {"$set": document}, upsert=True)

    async def stopped(self, worker: str) -> None:
        await self._entries.update_one({"_id": worker}, {"$set": {"stopped_at": now()}})

    async def entries(self) -> list[RecognizerEntry]:
        return [
            RecognizerEntry.model_validate({**document, "worker": document["_id"]})
            async for document in self._entries.find({})
        ]

    async def live(self) -> list[RecognizerEntry]:
        moment = now()
        return [entry for entry in await self.entries() if entry.is_live(moment)]

    async def slots_serving(self, engine: str) -> int:
        """How many slots the live recognizers have for `engine`."""
        return sum(entry.slots for entry in await self.live() if engine in entry.engines)

    async def served_recently(self) -> set[str]:
        """Engines some recognizer served within the last hour, running or not."""
        since = now() - SERVED_WITHIN
        return {
            engine
            for entry in await self.entries()
            if entry.seen_at > since
            for engine in entry.engines
        }

    async def speaker_labels_served_recently(self) -> set[str]:
        """Engines that some recognizer which labels speakers served within the last hour."""
        since = now() - SERVED_WITHIN
        return {
            engine
            for entry in await self.entries()
            if entry.seen_at > since and entry.labels_speakers
            for engine in entry.engines
        }
