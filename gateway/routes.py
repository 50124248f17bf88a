import base64
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import AfterValidator, BaseModel, BeforeValidator

from gateway.auth import Caller, caller_of
from gateway.schemas import (
    JOB_BODY,
    UPLOAD_BODY,
    EngineLoad,
    JobAccepted,
    JobList,
    JobSummary,
    NativeResult,
    NativeTimeout,
    ProgressUpdate,
    Readiness,
    TaskAccepted,
    TaskState,
    TranscriptJson,
    problems,
)
from gateway.submit import Services, submit_job
from gateway.watcher import Update
from shared import metrics
from shared.faults import BrokerUnavailable
from shared.jobs.listing import LIST_KEY, Listing, list_key
from shared.jobs.models import JOB_ID_PATTERN, ErrorCode, Job, JobStatus
from shared.pipeline import announce_end
from shared.transcripts import to_srt, to_turns, to_vtt

log = logging.getLogger(__name__)

router = APIRouter(tags=["jobs"])

UPLOAD_PROBLEMS = problems(400, 409, 413, 415, 422, 429, 503)
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="The id POST /v1/jobs returned.")]


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


CallerDep = Annotated[Caller, Depends(caller_of)]


async def find_job(services: Services, caller: Caller, job_id: str) -> Job:
    """The job, if the caller may see it: with API keys on, another key's job is unknown."""
    job = await services.jobs.get(job_id)
    if job is None or not caller.may_see(job.owner):
        raise HTTPException(404, f"No job {job_id}.")
    return job


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


@router.get("/v1/jobs/{job_id}", response_model=Job, responses=problems(404, 503))
async def get_job(job_id: JobId, services: ServicesDep, caller: CallerDep) -> Job:
    job = await find_job(services, caller, job_id)
    if job.status in (JobStatus.QUEUED, JobStatus.TRANSCODING):
        # The job is in the database; only its place in the queues needs the broker.
        with contextlib.suppress(BrokerUnavailable):
            return await services.backlog.place_of(job)
    return job


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


@router.get(
    "/v1/jobs/{job_id}/transcript",
    response_model=TranscriptJson,
    responses={
        200: {
            "content": {
                media_type: {"schema": {"type": "string"}}
                for media_type in ("text/plain", "application/x-subrip", "text/vtt")
            }
        },
        **problems(404, 409, 503),
    },
)
async def get_transcript(
    job_id: JobId,
    services: ServicesDep,
    caller: CallerDep,
    format: Annotated[Literal["txt", "json", "srt", "vtt"], Query()] = "txt",
) -> Response:
    job = await find_job(services, caller, job_id)
    if job.status is not JobStatus.DONE or job.text is None:
        reason = f": {job.error.message}" if job.error else ""
        raise HTTPException(409, f"Job {job_id} is {job.status}, not done{reason}")
    segments = job.segments or []
    if format == "json":
        body = TranscriptJson(
            job_id=job.job_id,
            text=job.text,
            language=job.detected_language or job.language,
            duration_seconds=job.duration_seconds,
            confidence=job.confidence,
            segments=segments,
            provenance=job.provenance,
            speakers=job.speakers,
        )
        return JSONResponse(body.model_dump())
    if format == "srt":
        return PlainTextResponse(to_srt(segments), media_type="application/x-subrip")
    if format == "vtt":
        return PlainTextResponse(to_vtt(segments), media_type="text/vtt")
    if job.speakers is not None:
        return PlainTextResponse(to_turns(segments))
    return PlainTextResponse(job.text)


def _event_schema(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }


def _component_refs(model: type[BaseModel]) -> dict[str, Any]:
    # The models it is made of are components of the document already, through Job.
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


# One event of the stream (OpenAPI 3.1 describes the events of a stream one at a time).
STREAM_EVENT = {
    "oneOf": [
        _event_schema("status", {"$ref": "#/components/schemas/Job"}),
        _event_schema("progress", _component_refs(ProgressUpdate)),
    ]
}


@router.get(
    "/v1/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events: `status`, with the job document as data, when"
            " the job's status changes; `progress`, with the progress and the newly recognized"
            " segments, each time a piece of a long recording is recognized.",
            "content": {"text/event-stream": {"schema": STREAM_EVENT}},
        },
        **problems(404, 503),
    },
    summary="Follow a job as it moves through the pipeline",
)
async def follow_job(job_id: JobId, services: ServicesDep, caller: CallerDep) -> StreamingResponse:
    await find_job(services, caller, job_id)
    keepalive = services.settings.events_keepalive_seconds

    async def stream() -> AsyncIterator[str]:
        changes = services.watcher.changes(job_id, keepalive)
        async with contextlib.aclosing(changes):
            async for update in changes:
                yield server_sent(update)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        # Proxies must pass each event on as it comes, not buffer the stream.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def server_sent(update: Update) -> str:
    if update is None:
        return ": still working\n\n"
    if isinstance(update, Job):
        return f"event: status\ndata: {update.model_dump_json()}\n\n"
    data = ProgressUpdate(
        job_id=update.job_id,
        piece_index=update.piece_index,
        progress=update.progress,
        segments=update.segments,
    )
    return f"event: progress\ndata: {data.model_dump_json()}\n\n"


@router.post(
    "/v1/jobs/{job_id}/cancel",
    response_model=Job,
    responses=problems(404, 409, 503),
    summary="Cancel a job under way: it ends `failed` with the code `cancelled`",
)
async def cancel_job(job_id: JobId, services: ServicesDep, caller: CallerDep) -> Job:
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
    return cancelled


# Open even when API keys are required, for probes and load balancers (gateway.app.PUBLIC_PATHS).
health_router = APIRouter(tags=["health"])


@health_router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics of this gateway, and the depth of every work queue",
)
async def metrics_text(request: Request, services: ServicesDep) -> PlainTextResponse:
    with contextlib.suppress(BrokerUnavailable):
        for queue in services.broker.topology.work_queues:
            waiting = await services.broker.queued_messages(queue.name)
            metrics.queue_depth.labels(queue.name).set(waiting)
    caller = request.state.caller  # None for a scrape without a known key
    shown = REGISTRY if caller is not None and caller.sees_all else metrics.WithoutKeyNames()
    return PlainTextResponse(generate_latest(shown).decode(), media_type=CONTENT_TYPE_LATEST)


@health_router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health_router.get(
    "/readyz",
    response_model=Readiness,
    summary="Broker and database are reachable; which engines live recognizers serve",
    responses=problems(503),
)
async def readyz(services: ServicesDep) -> Readiness:
    if not services.broker.is_connected:
        raise HTTPException(503, "The message broker is unreachable.")
    await services.jobs.ping()
    recognizers: dict[str, EngineLoad] = {}
    for entry in await services.fleet.live():
        for engine in entry.engines:
            load = recognizers.setdefault(engine, EngineLoad())
            load.live += 1
            load.slots += entry.slots
            load.busy += entry.busy
            if entry.problem:
                load.problems.append(f"{entry.worker}: {entry.problem}")
    return Readiness(recognizers=recognizers)


# Routes of the tutorial design this service grew from, kept for its users.


@router.post(
    "/stt/task",
    response_model=TaskAccepted,
    responses=UPLOAD_PROBLEMS,
    openapi_extra=JOB_BODY,
    tags=["tutorial compatibility"],
)
async def create_task(request: Request, services: ServicesDep) -> TaskAccepted:
    job, _ = await submit_job(services, request, accepts_url=True)
    return TaskAccepted(job_id=job.job_id, file_id=job.job_id)


@router.get(
    "/stt/task/{job_id}",
    response_model=TaskState,
    response_model_exclude_none=True,
    responses=problems(404, 503),
    tags=["tutorial compatibility"],
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
    tags=["tutorial compatibility"],
    summary="Upload and wait for the transcript",
)
async def transcribe_and_wait(request: Request, services: ServicesDep) -> Response:
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
