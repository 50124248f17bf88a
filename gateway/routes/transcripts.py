"""A job's results: its transcript in each format, and the stream of its progress."""

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from gateway.routes.deps import CallerDep, JobId, ServicesDep, find_job
from gateway.schemas import JobPublic, ProgressUpdate, problems
from gateway.watcher import Update
from shared.formats import DEFAULT_FORMAT, TRANSCRIPT_FORMATS, TranscriptJson
from shared.jobs.models import Job, JobStatus

router = APIRouter(tags=["jobs"])


# The names of TRANSCRIPT_FORMATS, as the type FastAPI validates the query by and documents.
FormatName: Any = Literal.__getitem__(tuple(TRANSCRIPT_FORMATS))


@router.get(
    "/v1/jobs/{job_id}/transcript",
    response_model=TranscriptJson,
    responses={
        200: {
            "content": {
                chosen.media_type: {"schema": {"type": "string"}}
                for chosen in TRANSCRIPT_FORMATS.values()
                if chosen.media_type != "application/json"
            }
        },
        **problems(404, 409, 503),
    },
)
async def get_transcript(
    job_id: JobId,
    services: ServicesDep,
    caller: CallerDep,
    format: Annotated[FormatName, Query()] = DEFAULT_FORMAT,
) -> Response:
    job = await find_job(services, caller, job_id)
    if job.status is not JobStatus.DONE or job.text is None:
        reason = f": {job.error.message}" if job.error else ""
        raise HTTPException(409, f"Job {job_id} is {job.status}, not done{reason}")
    chosen = TRANSCRIPT_FORMATS[format]
    return Response(chosen.render(job), media_type=chosen.media_type)


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
    # The models it is made of are components of the document already, through JobPublic.
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


# One event of the stream (OpenAPI 3.1 describes the events of a stream one at a time).
STREAM_EVENT = {
    "oneOf": [
        _event_schema("status", {"$ref": "#/components/schemas/JobPublic"}),
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
    end = services.waits.enter(caller.name, services.settings.max_waits_per_key)

    async def stream() -> AsyncIterator[str]:
        changes = services.watcher.changes(job_id, keepalive)
        async with contextlib.aclosing(changes):
            async for update in changes:
                yield server_sent(update)

    return CountedStream(
        stream(),
        end,
        media_type="text/event-stream",
        # Proxies must pass each event on as it comes, not buffer the stream.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class CountedStream(StreamingResponse):
    """A stream that ends its count in the key's waits however it ends: finished, broken off
    by the client, or never started because the client left first (a generator that never
    started runs no `finally`)."""

    def __init__(self, content: AsyncIterator[str], end: Callable[[], None], **options: Any):
        super().__init__(content, **options)
        self._end = end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._end()


def server_sent(update: Update) -> str:
    if update is None:
        return ": still working\n\n"
    if isinstance(update, Job):
        return f"event: status\ndata: {JobPublic.of(update).model_dump_json()}\n\n"
    data = ProgressUpdate(
        job_id=update.job_id,
        piece_index=update.piece_index,
        progress=update.progress,
        segments=update.segments,
    )
    return f"event: progress\ndata: {data.model_dump_json()}\n\n"
