"""What waits for each engine, read at most every few seconds however often it is asked: the
figures behind queue positions and estimated waits. They are estimates, not promises."""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from gateway.schemas import JobPublic
from shared.broker import Broker
from shared.fleet import Fleet, RecognizerEntry
from shared.jobs.models import Job
from shared.jobs.store import JobStore

REFRESH_SECONDS = 2.0
# How many recent jobs the pace of recognition is measured from.
PACE_SAMPLE = 20


@dataclass(frozen=True)
class EngineBacklog:
    queued: int
    """Messages (whole recordings and pieces) waiting in the engine's queues."""
    serving: list[RecognizerEntry]
    pace: float | None
    """Recent recognition seconds per piece; None before any job was done."""
    waiting_since: list[datetime] = field(default_factory=list)
    """Upload times of the jobs not yet cut into pieces, oldest first."""

    @property
    def slots(self) -> int:
        return sum(entry.slots for entry in self.serving)

    def wait_seconds(self, messages: int) -> float | None:
        """How long `messages` more would wait for a slot, at the recent pace."""
        if not self.slots or not self.pace:
            return None
        return round(messages * self.pace / self.slots, 1)


class Backlog:
    def __init__(self, broker: Broker, jobs: JobStore, fleet: Fleet) -> None:
        self._broker = broker
        self._jobs = jobs
        self._fleet = fleet
        self._read: dict[str, tuple[float, EngineBacklog]] = {}
        self._lock = asyncio.Lock()

    async def of(self, engine: str) -> EngineBacklog:
        loop = asyncio.get_running_loop()
        async with self._lock:
            read = self._read.get(engine)
            if read is None or loop.time() - read[0] > REFRESH_SECONDS:
                read = (loop.time(), await self._measure(engine))
                self._read[engine] = read
        return read[1]

    async def place_of(self, job: Job) -> JobPublic:
        """`job`, waiting for a slot, with its queue position and an estimated start."""
        backlog = await self.of(job.engine)
        position = sum(1 for uploaded in backlog.waiting_since if uploaded < job.created_at)
        return JobPublic.of(job).model_copy(
            update={
                "queue_position": position,
                "estimated_start_seconds": backlog.wait_seconds(backlog.queued + position),
            }
        )

    async def _measure(self, engine: str) -> EngineBacklog:
        topology = self._broker.topology
        queued = 0
        for queue in (topology.recognizers[engine], topology.pieces[engine]):
            queued += await self._broker.queued_messages(queue.name)
        serving = [entry for entry in await self._fleet.live() if engine in entry.engines]
        return EngineBacklog(
            queued=queued,
            serving=serving,
            pace=await self._jobs.recognition_seconds_per_piece(engine, PACE_SAMPLE),
            waiting_since=await self._jobs.waiting_since(engine),
        )
