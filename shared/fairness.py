"""Fair share between API keys (`STT_FAIR_SHARE_PER_KEY`): a key may have that many jobs in the
queues at once; the rest wait in the database, held, and go on oldest first as its earlier ones
finish. So a key that uploads a hundred files puts only its share ahead of another key's first
job, and with the share set to the fleet's slots that job waits about one job's time.

The gateway releases a key's next job when one of its jobs is announced finished; the janitor's
sweep does the same for every key holding jobs, in case an announcement or a release was lost.
"""

import logging

from shared.broker import Publish
from shared.events import MediaUploaded
from shared.jobs import JobStore
from shared.settings import CommonSettings

log = logging.getLogger(__name__)


async def should_hold(jobs: JobStore, owner: str | None, share: int | None) -> bool:
    """Whether a new job of `owner` must wait for its earlier ones."""
    if owner is None or share is None:
        return False
    return await jobs.count_dispatched(owner) >= share


async def release_held(
    jobs: JobStore, publish: Publish, owner: str, share: int, settings: CommonSettings
) -> int:
    """Send `owner`'s held jobs on, oldest first, while it has fewer than `share` in the
    queues; how many went."""
    released = 0
    while await jobs.count_dispatched(owner) < share:
        job = await jobs.next_held(owner)
        if job is None:
            break
        # Marked first, so two gateways never both send it; put back if it cannot be sent.
        if not await jobs.release(job, settings):
            continue
        try:
            await publish(MediaUploaded(job_id=job.job_id))
        except BaseException:
            await jobs.hold_again(job.job_id)
            raise
        log.info("job %s: released from the fair-share hold of key %s", job.job_id, owner)
        released += 1
    return released
