import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from janitor.settings import JanitorSettings
from shared import metrics
from shared.broker import Broker, Subscription, current_message, gave_up_retrying, parked_from
from shared.events import Event
from shared.fairness import FairShare
from shared.jobs.deadline import EXPIRED_MESSAGE
from shared.jobs.models import ErrorCode, JobFailure, now
from shared.jobs.store import JobStore
from shared.pipeline import already_handled, announce_end, final_event, noting_announcements
from shared.store import GridFSStore, MediaStore, open_store, orphan_age_seconds
from shared.topology import parking_queue
from shared.worker import Halt

log = logging.getLogger(__name__)

UNANNOUNCED_GRACE_SECONDS = 60


class CleanupHandler:
    """Takes any finishing event (transcript.done, job.failed) once the delay queue releases it."""

    def __init__(self, jobs: JobStore, store: MediaStore) -> None:
        self._jobs = jobs
        self._store = store

    async def __call__(self, event: Event) -> None:
        job = await self._jobs.get(event.job_id)
        if job is not None and not job.status.is_final:
            log.info("job %s: replayed since it ended; its files stay", event.job_id)
            return
        deleted = await self._store.delete_job(event.job_id)
        await self._jobs.delete_pieces(event.job_id)
        log.info("job %s: deleted %d file(s)", event.job_id, deleted)


class ParkedHandler:
    """Ends the job of a message that was parked, so no job waits on it forever, and makes sure
    its end is announced."""

    def __init__(self, jobs: JobStore, *, announces: bool) -> None:
        self._jobs = jobs
        # False for the queues of finished jobs (cleanup, callbacks): their message was itself
        # the announcement, and announcing again would start those consumers over, and loop.
        self._announces = announces

    async def __call__(self, event: Event) -> Event | None:
        metrics.parked.labels(parked_from(current_message.get())).inc()
        if gave_up_retrying(current_message.get()):
            failure = JobFailure(
                ErrorCode.RETRIES_EXHAUSTED,
                "A service this job needs (the broker, the database or an online speech engine) "
                "stayed unavailable through every retry; please submit again.",
            )
        else:
            failure = JobFailure(
                ErrorCode.PROCESSING_ERROR,
                "Processing this job failed repeatedly; the operators have been told.",
            )
        job = await self._jobs.fail(event.job_id, failure.code, failure.message)
        if job is None:
            if self._announces:
                # Failed by an earlier try whose announcement did not go out, or finished.
                return await already_handled(self._jobs, event.job_id)
            log.warning("job %s: parked message of a finished job; dropped", event.job_id)
            return None
        log.error("job %s: parked message; failed the job with %s", event.job_id, failure.code)
        return final_event(job)


class Sweeper:
    """Fails jobs still under way past their deadline, whatever held them up, deletes jobs past
    their retention, and deletes stored files left behind by jobs that never got as far as a cleanup (each service sweeps its own
    local folder: `shared.worker.connected`)."""

    def __init__(
        self, broker: Broker, jobs: JobStore, store: MediaStore, settings: JanitorSettings
    ) -> None:
        self._broker = broker
        self._jobs = jobs
        self._store = store
        self._fair_share = FairShare(jobs, broker.publish, settings)
        self._settings = settings

    async def sweep(self) -> None:
        await self.expire_overdue_jobs()
        await self.delete_retired_jobs()
        await self.announce_unannounced_jobs()
        await self.release_held_jobs()
        if isinstance(self._store, GridFSStore):
            cutoff = now() - timedelta(seconds=orphan_age_seconds(self._settings))
            orphans = await self._store.delete_orphans(self._jobs, cutoff)
            if orphans:
                log.warning("deleted %d orphaned stored file(s)", orphans)

    async def expire_overdue_jobs(self) -> int:
        expired = 0
        for job_id in await self._jobs.overdue(now()):
            failure = JobFailure(ErrorCode.EXPIRED, EXPIRED_MESSAGE)
            job = await self._jobs.fail(job_id, failure.code, failure.message)
            if job is None:
                continue
            log.warning("job %s: expired", job_id)
            if await announce_end(self._jobs, self._broker.publish, job):
                expired += 1
        return expired

    async def delete_retired_jobs(self) -> int:
        """Delete the jobs whose retention (STT_RETENTION_DAYS) has run out since they ended."""
        deleted = await self._jobs.delete_retired(self._settings.retention_days, now())
        if deleted:
            log.info(
                "deleted %d job(s) finished over %g days ago",
                deleted,
                self._settings.retention_days,
            )
        return deleted

    async def announce_unannounced_jobs(self) -> int:
        """Announce the end of jobs whose announcement was never confirmed, so every job that
        ends reaches its callback and its cleanup."""
        # Younger ones may still be in the hands of the worker that ended them.
        before = now() - timedelta(seconds=UNANNOUNCED_GRACE_SECONDS)
        announced = 0
        for job in await self._jobs.unannounced(before):
            log.warning("job %s: %s but never announced; announcing it", job.job_id, job.status)
            if await announce_end(self._jobs, self._broker.publish, job):
                announced += 1
        return announced

    async def release_held_jobs(self) -> int:
        """Send on held jobs whose key has room in its share again, should the gateway have
        missed the moment (a lost announcement, a gateway stopped mid-release)."""
        return await self._fair_share.release_every_key()

    async def run_every(self, interval_seconds: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("deadline sweep failed; trying again in %g s", interval_seconds)
            await asyncio.sleep(interval_seconds)


@contextlib.asynccontextmanager
async def subscriptions(
    settings: JanitorSettings, broker: Broker, jobs: JobStore, _halt: Halt
) -> AsyncIterator[list[Subscription[Any]]]:
    store = open_store(settings.media_store, jobs.database, settings.media_dir)
    if isinstance(store, GridFSStore):
        await store.ensure_indexes()
    sweeper = Sweeper(broker, jobs, store, settings)
    sweeping = asyncio.create_task(sweeper.run_every(settings.sweep_interval_seconds))
    cleanup = CleanupHandler(jobs, store)
    topology = broker.topology
    finished_queues = {
        parking_queue(queue.name) for queue in (topology.janitor, topology.callbacks)
    }
    announced = noting_announcements(jobs)
    try:
        yield [
            Subscription(topology.janitor, Event, cleanup, settings.janitor_concurrency),
            *(
                Subscription(
                    queue,
                    Event,
                    ParkedHandler(jobs, announces=queue.name not in finished_queues),
                    1,
                    announced,
                )
                for queue in topology.parked
            ),
        ]
    finally:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
