"""The janitor's work: deleting a job's media once the cleanup delay after its end has passed,
failing a job whose message RabbitMQ parked, and a sweep that fails jobs past their deadline,
announces ends that were never confirmed and lets held jobs go on."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from janitor.settings import JanitorSettings
from shared import metrics
from shared.broker import Broker, Publish, Subscription
from shared.events import Event, UtteranceReady
from shared.fairness import FairShare
from shared.faults import BrokerUnavailable
from shared.jobs.deadline import EXPIRED_MESSAGE
from shared.jobs.models import ErrorCode, JobError, JobFailure, now
from shared.jobs.store import JobStore
from shared.live import finish_if_complete, give_up_utterance
from shared.media_store import GridFSStore, MediaStore, open_store, orphan_age_seconds
from shared.messages import current_message, gave_up_retrying, parked_from
from shared.pipeline import already_handled, announce_end, final_event, noting_announcements
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
        failure = _parked_failure("job", "please submit again")
        job = await self._jobs.fail(event.job_id, failure.code, failure.message)
        if job is None:
            if self._announces:
                # Failed by an earlier try whose announcement did not go out, or finished.
                return await already_handled(self._jobs, event.job_id)
            log.warning("job %s: parked message of a finished job; dropped", event.job_id)
            return None
        log.error("job %s: parked message; failed the job with %s", event.job_id, failure.code)
        return final_event(job)


class ParkedUtteranceHandler:
    """Fails the one utterance of a live session whose message was parked (it kept crashing a
    slot, say): the session is told, its job still completes with the other utterances, and the
    utterances after it are recognized as usual."""

    def __init__(self, jobs: JobStore, publish: Publish) -> None:
        self._jobs = jobs
        self._publish = publish

    async def __call__(self, event: UtteranceReady) -> None:
        metrics.parked.labels(parked_from(current_message.get())).inc()
        job = await self._jobs.get(event.job_id)
        if job is None or job.status.is_final:
            log.warning("job %s: parked utterance of a finished session; dropped", event.job_id)
            return
        if await self._jobs.is_recognized(job.job_id, event.piece_index):
            return  # stored and counted before the message came here
        failure = _parked_failure("utterance", "the session goes on")
        counted, told = await give_up_utterance(
            self._jobs,
            job,
            event.piece_index,
            JobError(code=failure.code, message=failure.message),
            "janitor",
        )
        log.error(
            "job %s: parked utterance %d; failed it with %s",
            job.job_id, event.piece_index, failure.code,
        )  # fmt: skip
        current = counted or await self._jobs.get(job.job_id)
        if current is not None:
            finished = await finish_if_complete(self._jobs, current)
            if finished is not None:
                await announce_end(self._jobs, self._publish, finished)
        with contextlib.suppress(BrokerUnavailable):  # no gateway holds the session any more
            await self._publish(told)


def _parked_failure(what: str, then: str) -> JobFailure:
    """Why the work of a parked message failed, as its headers tell."""
    if gave_up_retrying(current_message.get()):
        return JobFailure(
            ErrorCode.RETRIES_EXHAUSTED,
            f"A service this {what} needs (the broker, the database or an online speech engine)"
            f" stayed unavailable through every retry; {then}.",
        )
    return JobFailure(
        ErrorCode.PROCESSING_ERROR,
        f"Processing this {what} failed repeatedly; the operators have been told.",
    )


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
    live_queues = {parking_queue(queue.name) for queue in topology.live.values()}
    announced = noting_announcements(jobs)
    utterances = ParkedUtteranceHandler(jobs, broker.publish)
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
                if queue.name not in live_queues
            ),
            *(
                Subscription(queue, UtteranceReady, utterances)
                for queue in topology.parked
                if queue.name in live_queues
            ),
        ]
    finally:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
