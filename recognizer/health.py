"""What a recognizer tells the fleet of itself: its engines and slots, how busy it is, and what
is wrong with it, refreshed every few seconds."""

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator

from pymongo.errors import PyMongoError

from recognizer.pool import SlotPool
from shared.fleet import HEARTBEAT_SECONDS, Fleet, RecognizerEntry, worker_id
from shared.jobs.models import now

log = logging.getLogger(__name__)

FIRST_REST_SECONDS = 1.0
MAX_REST_SECONDS = 30.0


class Health:
    def __init__(
        self,
        fleet: Fleet,
        pool: SlotPool,
        engines: tuple[str, ...],
        labels_speakers: bool = False,
    ) -> None:
        self._fleet = fleet
        self._pool = pool
        self._rest_seconds = FIRST_REST_SECONDS
        self._resting_until = 0.0
        started = now()
        self.entry = RecognizerEntry(
            worker=worker_id(),
            host=socket.gethostname(),
            pid=os.getpid(),
            engines=list(engines),
            slots=pool.size,
            models=pool.models,
            labels_speakers=labels_speakers,
            started_at=started,
            seen_at=started,
        )

    @property
    def worker(self) -> str:
        return self.entry.worker

    async def media_missing(self, why: str) -> None:
        """Report the problem, and rest from taking work a while, longer each time, so that
        healthy recognizers take the work this one hands back."""
        # The entry is public (GET /readyz): the why, with its paths and job ids, is logged only.
        problem = (
            "cannot read the audio of its work (is STT_MEDIA_DIR the folder every service"
            " shares, or the media store out of reach?); the work goes back to the queue"
        )
        if self.entry.problem != problem:
            log.error("unhealthy: %s: %s", problem, why)
            self.entry = self.entry.model_copy(update={"problem": problem})
            await self.report()  # at once: operators should not wait for the next beat
        self._resting_until = time.monotonic() + self._rest_seconds
        self._rest_seconds = min(self._rest_seconds * 2, MAX_REST_SECONDS)

    @property
    def resting(self) -> bool:
        return time.monotonic() < self._resting_until

    def fine(self) -> None:
        self._rest_seconds = FIRST_REST_SECONDS
        if self.entry.problem is not None:
            log.info("healthy again")
            self.entry = self.entry.model_copy(update={"problem": None})

    async def report(self) -> None:
        self.entry = self.entry.model_copy(update={"busy": self._pool.busy, "seen_at": now()})
        try:
            await self._fleet.report(self.entry)
        except PyMongoError as error:
            log.warning("could not report to the fleet: %r", error)

    @contextlib.asynccontextmanager
    async def reporting(self) -> AsyncIterator[None]:
        """Report now and every few seconds until the body ends, then report the stop."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                await self.report()

        await self.report()
        beating = asyncio.create_task(beat())
        try:
            yield
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            with contextlib.suppress(PyMongoError):
                await self._fleet.stopped(self.worker)
