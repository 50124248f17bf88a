"""Lets a request wait for its job to finish without polling the database."""

import asyncio
import uuid
from collections import defaultdict

from shared.broker import Broker
from shared.events import Event, JobFailed, TranscriptDone
from shared.jobs import Job, JobStore


class JobWatcher:
    def __init__(self, broker: Broker, jobs: JobStore) -> None:
        self._broker = broker
        self._jobs = jobs
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)

    async def start(self) -> None:
        name = f"{self._broker.topology.exchange}--gateway-{uuid.uuid4().hex[:12]}"
        routing_keys = (TranscriptDone.routing_key, JobFailed.routing_key)
        await self._broker.watch(name, routing_keys, self._on_finished)

    def _on_finished(self, event: Event) -> None:
        for waiter in self._waiters.pop(event.job_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def wait_until_finished(self, job_id: str, timeout_seconds: float) -> Job | None:
        """The job once done or failed; None if it is not finished within the time."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[job_id].add(waiter)
        try:
            # Read after subscribing, so a job finishing in between is not missed.
            job = await self._jobs.get(job_id)
            if job is not None and job.status.is_final:
                return job
            try:
                await asyncio.wait_for(waiter, timeout_seconds)
            except TimeoutError:
                return None
            return await self._jobs.get(job_id)
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[job_id]
