"""The job API: submit, list, read, cancel and delete jobs."""

import base64
import contextlib
import logging
import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import AfterValidator, BeforeValidator

from gateway.routes.deps import CallerDep, JobId, ServicesDep, find_job
from gateway.schemas import (
    JOB_BODY,
    UPLOAD_PROBLEMS,
    JobAccepted,
    JobList,
    JobPublic,
    JobSummary,
    problems,
)
from gateway.submit import submit_job
from shared.faults import BrokerUnavailable
from shared.jobs.listing import LIST_KEY, Listing, list_key
from shared.jobs.models import ErrorCode, Job, JobStatus
from shared.pipeline import announce_end

log = logging.getLogger(__name__)

router = APIRouter(tags=["jobs"])


@router.post(
    "/v1/jobs",
    status_code=202,
    response_model=JobAccepted,
    responses=UPLOAD_PROBLEMS,
    openapi_extra=JOB_BODY,
    summary="Upload a media file, or give its URL, for transcription",
)
async def create_job(request: Request, response: Response, services: ServicesDep) -> JobAccepted:
    job, _ = await submit_job(services, request, accepts_url=True)
    response.headers["Location"] = f"/v1/jobs/{job.job_id}"
    return JobAccepted(job_id=job.job_id, status=job.status)


def _iso_only(value: object) -> object:
    # pydantic would also read a number as seconds since 1970; the API promises ISO 8601 only.
    if isinstance(value, str) and not re.match(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("expected an ISO 8601 date and time, such as 2026-11-27T09:30:00Z")
    return value


def _in_utc(moment: datetime) -> datetime:
    # Keys are UTC; a time given without a zone is read as UTC.
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("the time falls outside the years 1 to 9999 once moved to UTC") from None


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_in_utc)]


@router.get(
    "/v1/jobs",
    response_model=JobList,
    responses=problems(400, 403, 503),
    summary="Your jobs, newest first, a page at a time",
)
async def list_jobs(
    services: ServicesDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="`next` of the page before.")] = None,
    status: JobStatus | None = None,
    engine: str | None = None,
    created_after: IsoDatetime | None = None,
    created_before: IsoDatetime | None = None,
    owner: Annotated[str | None, Query(description="Admin keys only: one key's jobs.")] = None,
) -> JobList:
    if owner is not None and not caller.sees_all and owner != caller.name:
        raise HTTPException(403, "Only an admin key (STT_ADMIN_KEYS) may list another key's jobs.")
    listing = Listing(
        owner=owner if caller.sees_all else caller.name,
        status=status,
        engine=engine,
        created_after=created_after,
        created_before=created_before,
        after=read_cursor(cursor) if cursor is not None else None,
    )
    jobs = await services.jobs.page(listing, limit + 1)
    shown = jobs[:limit]
    return JobList(
        jobs=[JobSummary.model_validate(job, from_attributes=True) for job in shown],
        next=page_cursor(shown[-1]) if len(jobs) > limit else None,
    )


def page_cursor(job: Job) -> str:
    return base64.urlsafe_b64encode(list_key(job).encode()).decode()


def read_cursor(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError:
        key = ""
    if not LIST_KEY.fullmatch(key):
        raise HTTPException(400, "cursor is not one this service gave out.")
    return key


# A poller is asked to wait at least this long between polls of a job under way.
POLL_AGAIN_SECONDS = 2
MAX_POLL_AGAIN_SECONDS = 60


@router.get("/v1/jobs/{job_id}", response_model=JobPublic, responses=problems(404, 503))
async def get_job(
    job_id: JobId, services: ServicesDep, caller: CallerDep, response: Response
) -> JobPublic:
    job = await find_job(services, caller, job_id)
    shown = JobPublic.of(job)
    if job.status in (JobStatus.QUEUED, JobStatus.TRANSCODING):
        # The job is in the database; only its place in the queues needs the broker.
        with contextlib.suppress(BrokerUnavailable):
            shown = await services.backlog.place_of(job)
    if not job.status.is_final:
        response.headers.update(poll_advice(shown))
    return shown


def poll_advice(job: JobPublic) -> dict[str, str]:
    """For a job under way: when to ask again (`Retry-After`, from its estimates), and the
    routes that tell the end without polling (`Link`): its event stream, which ends with it."""
    expected = job.estimated_start_seconds or (job.progress.eta_seconds if job.progress else None)
    again = min(max(POLL_AGAIN_SECONDS, round(expected or 0)), MAX_POLL_AGAIN_SECONDS)
    return {
        "Retry-After": str(again),
        "Link": f'</v1/jobs/{job.job_id}/events>; rel="monitor"',
    }


@router.delete(
    "/v1/jobs/{job_id}",
    status_code=204,
    responses=problems(404, 409, 503),
    summary="Delete a finished job: its document, transcript and files",
)
async def delete_job(job_id: JobId, services: ServicesDep, caller: CallerDep) -> Response:
    job = await find_job(services, caller, job_id)
    if not job.status.is_final:
        raise HTTPException(
            409, f"Job {job_id} is {job.status}; it can be deleted once it is done or failed."
        )
    await services.store.delete_job(job_id)
    await services.jobs.delete(job_id)
    return Response(status_code=204)


@router.post(
    "/v1/jobs/{job_id}/cancel",
    response_model=JobPublic,
    responses=problems(404, 409, 503),
    summary="Cancel a job under way: it ends `failed` with the code `cancelled`",
)
async def cancel_job(job_id: JobId, services: ServicesDep, caller: CallerDep) -> JobPublic:
    job = await find_job(services, caller, job_id)
    cancelled = None
    if not job.status.is_final:
        cancelled = await services.jobs.fail(
            job_id, ErrorCode.CANCELLED, "The job was cancelled at the request of its owner."
        )
    if cancelled is None:
        raise HTTPException(409, f"Job {job_id} has already finished: it is {job.status}.")
    try:
        await announce_end(services.jobs, services.broker.publish, cancelled)
    except BrokerUnavailable:
        # The job has ended all the same; the janitor's sweep announces it once it can.
        log.warning("job %s: cancelled, but its end could not be announced yet", job_id)
    return JobPublic.of(cancelled)
