"""Replay jobs that failed because a message was parked, once the cause is fixed.

    python -m scripts.replay JOB_ID [JOB_ID ...]

A message is parked when a service it needs stayed away through every retry
(`retries_exhausted`) or when handling it crashed its worker again and again
(`processing_error`); the janitor then fails its job, so nobody waits on it forever. Once the
cause is gone (a worker restarted with the right settings, a provider back), this puts each such
job back to `queued` and hands its upload to the transcoders again, as if it had just been
uploaded. It works while the job's upload is still stored: the janitor deletes it
STT_CLEANUP_DELAY_SECONDS after the job failed. Reads the same STT_* settings as the services.
"""

import asyncio
import sys

from shared.events import MediaUploaded
from shared.jobs.models import ErrorCode
from shared.media_store import open_store
from shared.settings import CommonSettings
from shared.worker import connected

REPLAYABLE = (ErrorCode.RETRIES_EXHAUSTED, ErrorCode.PROCESSING_ERROR)


async def replay(settings: CommonSettings, job_ids: list[str]) -> int:
    """Replay each job; the number that could not be."""
    refused = 0
    async with connected(settings) as (broker, jobs):
        store = open_store(settings.media_store, jobs.database, settings.media_dir)
        for job_id in job_ids:
            try:
                kept = await store.has_upload(job_id)
            except ValueError:  # not a job id
                kept = False
            if not kept:
                print(
                    f"{job_id}: not replayed: no upload of it is stored (the janitor deletes it"
                    " STT_CLEANUP_DELAY_SECONDS after the job failed)",
                    file=sys.stderr,
                )
                refused += 1
                continue
            job = await jobs.reopen(job_id, REPLAYABLE, settings)
            if job is None:
                print(
                    f"{job_id}: not replayed: only jobs failed with {' or '.join(REPLAYABLE)} are",
                    file=sys.stderr,
                )
                refused += 1
                continue
            await broker.publish(MediaUploaded(job_id=job_id))
            print(f"{job_id}: replayed")
    return refused


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    sys.exit(1 if asyncio.run(replay(CommonSettings(), sys.argv[1:])) else 0)


if __name__ == "__main__":
    main()
