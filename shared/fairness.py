"""Fair share between API keys (`STT_FAIR_SHARE_PER_KEY`): a key may have that many jobs in the
queues at once; the rest wait in the database, held, and go on oldest first as its earlier ones
finish. So a key that uploads a hundred files puts only its share ahead of another key's first
job, and with the share set to the fleet's slots that job waits about one job's time.

`FairShare` is the one entry point: the gateway asks it whether a new job is held, and has it
release a key's next job when one of that key's jobs is announced finished; the janitor's sweep
has it release jobs of every key holding any, in case an announcement or a release was lost.
"""

import logging

from shared.broker import Publish
from shared.events import MediaUploaded
from shared.jobs.store import JobStore
from shared.settings import CommonSettings

log = logging.getLogger(__name__)


class FairShare:
    """The deployment's fair share; without one set (or for a job without a key) nothing is
    ever held, and releasing does nothing."""

    def __init__(self, jobs: JobStore, publish: Publish, settings: CommonSettings) -> None:
        self._jobs = jobs
        self._publish = publish
        self._settings = settings
        self._share = settings.fair_share_per_key

    async def holds(self, owner: str | None) -> bool:
        """Whether a new job of `owner` must wait for its earlier ones."""
        if owner is None or self._share is None:
            return False
        return await self._jobs.count_dispatched(owner) >= self._share

    async def release(self, owner: str | None) -> int:
        """Send `owner`'s held jobs on, oldest first, while it has fewer than its share in the
        queues; how many went."""
        if owner is None or self._share is None:
            return 0
        released = 0
        while await self._jobs.count_dispatched(owner) < self._share:
            job = await self._jobs.next_held(owner)
            if job is None:
                break
            # Marked first, so two gateways never both send it; put back if it cannot be sent.
            if not await self._jobs.release(job, self._settings):
                continue
            try:
                await self._publish(MediaUploaded(job_id=job.job_id))
            except BaseException:
                await self._jobs.hold_again(job.job_id)
                raise
            log.info("job %s: released from the fair-share hold of key %s", job.job_id, owner)
            released += 1
        return released

    async def release_every_key(self) -> int:
        """Release what each key holding jobs has room for; how many went."""
        if self._share is None:
            return 0
        released = 0
        for owner in await self._jobs.owners_holding():
            released += await self.release(owner)
        return released
