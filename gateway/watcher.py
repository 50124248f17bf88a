"""Follows jobs through the pipeline's events, so a request can wait on a job or stream its
progress without polling the database."""

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncGenerator, Iterator

from shared.broker import Broker
from shared.events import AudioReady, Event, JobFailed, TranscriptDone
from shared.jobs import Job, JobStore


class JobWatcher:
    def __init__(self, broker: Broker, jobs: JobStore) -> None:
        self._broker = broker
        self._jobs = jobs
        self._listeners: defaultdict[str, set[asyncio.Queue[Event]]] = defaultdict(set)

    async def start(self) -> None:
        """Receive a copy of every event that moves a job, on a queue of this gateway's own."""
        name = f"{self._broker.topology.exchange}--gateway-{uuid.uuid4().hex[:12]}"
        routing_keys = (
            f"{AudioReady.routing_key}.*",
            TranscriptDone.routing_key,
            JobFailed.routing_key,
        )
        await self._broker.watch(name, routing_keys, self._on_event)

    def _on_event(self, event: Event) -> None:
        for listener in self._listeners.get(event.job_id, ()):
            listener.put_nowait(event)

    @contextlib.contextmanager
    def _listening(self, job_id: str) -> Iterator[asyncio.Queue[Event]]:
        listener: asyncio.Queue[Event] = asyncio.Queue()
        self._listeners[job_id].add(listener)
        try:
            yield listener
        finally:
            listeners = self._listeners[job_id]
            listeners.discard(listener)
            if not listeners:
                del self._listeners[job_id]

    async def changes(
        self, job_id: str, keepalive_seconds: float
    ) -> AsyncGenerator[Job | None, None]:
        """The job now, then again each time its status changes, until it is finished (or gone).
        None after `keepalive_seconds` without a change, so a stream can show it is alive."""
        with self._listening(job_id) as events:
            last_status = None
            while True:
                # Read after listening, so an event in between is not missed.
                job = await self._jobs.get(job_id)
                if job is None:
                    return
                if job.status != last_status:
                    yield job
                    last_status = job.status
                if job.status.is_final:
                    return
                try:
                    await asyncio.wait_for(events.get(), keepalive_seconds)
                except TimeoutError:
                    yield None

    async def wait_until_finished(self, job_id: str, timeout_seconds: float) -> Job | None:
        """The job once done or failed; None if it is not finished within the time."""
        changes = self.changes(job_id, keepalive_seconds=timeout_seconds)
        try:
            async with contextlib.aclosing(changes), asyncio.timeout(timeout_seconds):
                async for job in changes:
                    if job is not None and job.status.is_final:
                        return job
        except TimeoutError:
            pass
        return None
