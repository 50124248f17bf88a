"""Follows jobs through the pipeline's events, so a request can wait on a job or stream its
progress without polling the database."""

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncGenerator, Iterator

from pydantic import ValidationError

from shared.broker import Broker
from shared.events import (
    FINISHED,
    AudioReady,
    Event,
    InterimRecognized,
    PieceRecognized,
    RecognitionStarted,
    UtteranceRecognized,
)
from shared.jobs.models import Job, Progress
from shared.jobs.store import JobStore

log = logging.getLogger(__name__)

# What a follower is told: the job when its status changes, a piece when one is recognized,
# None when nothing happened for a while.
Update = Job | PieceRecognized | None


# Events whose own fields a follower needs; of the others only the job id is read.
_KINDS: dict[str, type[Event]] = {
    PieceRecognized.routing_key: PieceRecognized,
    UtteranceRecognized.routing_key: UtteranceRecognized,
    InterimRecognized.routing_key: InterimRecognized,
}


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
            f"{AudioReady.piece_routing_key}.*",
            RecognitionStarted.routing_key,
            PieceRecognized.routing_key,
            UtteranceRecognized.routing_key,
            InterimRecognized.routing_key,
            *FINISHED,
        )
        await self._broker.watch(name, routing_keys, self._on_event)

    def _on_event(self, routing_key: str, body: bytes) -> None:
        kind = _KINDS.get(routing_key, Event)
        try:
            event = kind.model_validate_json(body)
        except ValidationError as error:
            log.warning("ignoring a malformed %s event: %s", routing_key, error)
            return
        for listener in self._listeners.get(event.job_id, ()):
            listener.put_nowait(event)

    @contextlib.contextmanager
    def listening(self, job_id: str) -> Iterator[asyncio.Queue[Event]]:
        """The events of `job_id` as they arrive, for the body of the `with`."""
        listener: asyncio.Queue[Event] = asyncio.Queue()
        self._listeners[job_id].add(listener)
        try:
            yield listener
        finally:
            listeners = self._listeners[job_id]
            listeners.discard(listener)
            if not listeners:
                del self._listeners[job_id]

    async def changes(self, job_id: str, keepalive_seconds: float) -> AsyncGenerator[Update, None]:
        """The job now (and the pieces recognized so far), then the job again each time its
        status changes and each piece as it is recognized, until the job is finished (or gone).
        None after `keepalive_seconds` without news, so a stream can show it is alive."""
        with self.listening(job_id) as events:
            last_status = None
            furthest: Progress | None = None
            event: Event | None = None
            while True:
                if isinstance(event, PieceRecognized):
                    # Pieces finish on several slots at once; the progress shown never goes back.
                    if furthest is None or event.progress.pieces_done > furthest.pieces_done:
                        furthest = event.progress
                    yield event.model_copy(update={"progress": furthest})
                else:
                    # Read after listening, so an event in between is not missed.
                    job = await self._jobs.get(job_id)
                    if job is None:
                        return
                    if job.status != last_status:
                        yield job
                        if last_status is None and not job.status.is_final:
                            furthest = job.progress
                            async for piece in self._recognized_so_far(job):
                                yield piece
                        last_status = job.status
                    if job.status.is_final:
                        return
                try:
                    event = await asyncio.wait_for(events.get(), keepalive_seconds)
                except TimeoutError:
                    event = None
                    yield None

    async def _recognized_so_far(self, job: Job) -> AsyncGenerator[PieceRecognized, None]:
        if job.progress is None or job.progress.pieces_done == 0:
            return
        for piece in await self._jobs.pieces(job.job_id):
            yield PieceRecognized(
                job_id=job.job_id,
                piece_index=piece.index,
                progress=job.progress,
                segments=piece.transcript.segments,
            )

    async def wait_until_finished(self, job_id: str, timeout_seconds: float) -> Job | None:
        """The job once done or failed; None if it is not finished within the time."""
        changes = self.changes(job_id, keepalive_seconds=timeout_seconds)
        try:
            async with contextlib.aclosing(changes), asyncio.timeout(timeout_seconds):
                async for update in changes:
                    if isinstance(update, Job) and update.status.is_final:
                        return update
        except TimeoutError:
            pass
        return None
