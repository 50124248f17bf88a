"""Routes of the tutorial design this service grew from, kept for its users: a job by
`POST /stt/task` and its state by `GET /stt/task/{job_id}`, or the transcript in the answer by
`POST /stt/native`."""

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from gateway.routes.deps import CallerDep, JobId, ServicesDep, find_job
from gateway.schemas import (
    JOB_BODY,
    UPLOAD_BODY,
    UPLOAD_PROBLEMS,
    NativeResult,
    NativeTimeout,
    TaskAccepted,
    TaskState,
    problems,
)
from gateway.submit import submit_job
from shared.jobs.models import JobStatus

# Also under "jobs", as they were listed before they had a module of their own.
router = APIRouter(tags=["jobs", "tutorial compatibility"])


@router.post(
    "/stt/task",
    response_model=TaskAccepted,
    responses=UPLOAD_PROBLEMS,
    openapi_extra=JOB_BODY,
)
async def create_task(request: Request, services: ServicesDep) -> TaskAccepted:
    job, _ = await submit_job(services, request, accepts_url=True)
    return TaskAccepted(job_id=job.job_id, file_id=job.job_id)


@router.get(
    "/stt/task/{job_id}",
    response_model=TaskState,
    response_model_exclude_none=True,
    responses=problems(404, 503),
)
async def get_task(job_id: JobId, services: ServicesDep, caller: CallerDep) -> TaskState:
    job = await find_job(services, caller, job_id)
    if job.status is JobStatus.DONE:
        return TaskState(job_id=job_id, text=job.text)
    if job.status is JobStatus.FAILED:
        return TaskState(job_id=job_id, status="failed", error=job.error)
    return TaskState(job_id=job_id, status="processing")


@router.post(
    "/stt/native",
    response_model=NativeResult,
    responses={504: {"model": NativeTimeout}, **UPLOAD_PROBLEMS},
    openapi_extra=UPLOAD_BODY,
    summary="Upload and wait for the transcript",
)
async def transcribe_and_wait(
    request: Request, services: ServicesDep, caller: CallerDep
) -> Response:
    with services.waits.holding(caller.name, services.settings.max_waits_per_key):
        job, _ = await submit_job(services, request)
        wait_seconds = services.settings.native_wait_seconds
        finished = await services.watcher.wait_until_finished(job.job_id, wait_seconds)
    if finished is None:
        timeout = NativeTimeout(
            detail=f"Not finished within {wait_seconds:.0f} s; poll GET /v1/jobs/{job.job_id}.",
            job_id=job.job_id,
        )
        return JSONResponse(timeout.model_dump(), status_code=504)
    if finished.status is JobStatus.FAILED and finished.error is not None:
        raise HTTPException(422, f"Job {job.job_id} failed: {finished.error.message}")
    return JSONResponse(NativeResult(job_id=job.job_id, text=finished.text or "").model_dump())
