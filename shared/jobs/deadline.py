"""The one deadline rule: when a job that has not finished fails as `expired`."""

from datetime import datetime, timedelta

from shared.jobs.models import Job
from shared.settings import CommonSettings


def deadline_for(
    job: Job,
    settings: CommonSettings,
    audio_seconds: float = 0.0,
    *,
    released_at: datetime | None = None,
) -> datetime:
    """When `job` fails as `expired`: the one rule, wherever a deadline is set (upload, release
    from a fair-share hold, replay, the audio's length once known, a live session's start).

    It counts from when the job entered the queues (`released_at` when it is entering them now,
    else its release or replay on record, else its upload), never from a moment it spent held
    waiting its turn, and grows with the audio once its length is known. A held job has no
    running deadline: the sweep passes it over (JobStore.overdue) and its release sets a new one."""
    allowance = settings.job_deadline_seconds + (
        audio_seconds * settings.deadline_seconds_per_audio_second
    )
    start = released_at or job.released_at or job.created_at
    return start + timedelta(seconds=allowance)


EXPIRED_MESSAGE = (
    "The job did not finish by its deadline (STT_JOB_DEADLINE_SECONDS after upload,"
    " plus STT_DEADLINE_SECONDS_PER_AUDIO_SECOND for each second of audio)."
)
