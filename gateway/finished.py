"""What the gateway does with each job that ends (its announcement reaches one gateway): count
it, let its key's next held job go on (fair share), and call back."""

from gateway.callbacks import CallbackHandler
from shared import metrics
from shared.broker import Publish
from shared.events import Event
from shared.fairness import FairShare
from shared.jobs.store import JobStore
from shared.messages import current_message, retries_of
from shared.settings import CommonSettings


class FinishedHandler:
    def __init__(
        self,
        jobs: JobStore,
        publish: Publish,
        settings: CommonSettings,
        callbacks: CallbackHandler,
    ) -> None:
        self._jobs = jobs
        self._fair_share = FairShare(jobs, publish, settings)
        self._callbacks = callbacks

    async def __call__(self, event: Event) -> None:
        job = await self._jobs.get(event.job_id)
        if job is not None and job.status.is_final:
            if _first_try():
                code = job.error.code if job.error else ""
                metrics.jobs_finished.labels(job.engine, job.status, code).inc()
            await self._fair_share.release(job.owner)
        await self._callbacks(event)


def _first_try() -> bool:
    """Whether this is the message's first delivery (a retried callback counts no new job)."""
    message = current_message.get(None)
    return message is None or retries_of(message) == 0
