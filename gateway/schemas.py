"""Response bodies of the HTTP API."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.upload import MULTIPART_ONLY
from shared.engines import KNOWN_ENGINES, TASKS
from shared.jobs.models import Job, JobBase, JobError, JobStatus, Progress
from shared.jobs.options import MAX_SPEAKERS
from shared.transcripts import Segment


class JobPublic(JobBase):
    """A job as the API shows it (GET /v1/jobs/{job_id}, the event stream, callbacks): the stored
    document without the services' bookkeeping, and, while it waits, its place in the queues."""

    queue_position: int | None = Field(
        None,
        description="While the job waits for a slot: how many jobs of its engine wait before it"
        " (not stored; given by GET /v1/jobs/{job_id}).",
    )
    estimated_start_seconds: float | None = Field(
        None,
        description="While the job waits: an estimate of when a slot starts on it, from the"
        " work queued before it, the recent recognition time per piece and the live slots.",
    )

    @classmethod
    def of(cls, job: Job) -> "JobPublic":
        return cls.model_validate(job, from_attributes=True)


class JobSummary(BaseModel):
    """A job in the job list: what it is and how it stands, without its transcript."""

    job_id: str
    status: JobStatus
    owner: str | None
    filename: str | None
    engine: str
    language: str
    duration_seconds: float | None
    progress: Progress | None
    error: JobError | None
    created_at: datetime
    updated_at: datetime


class JobList(BaseModel):
    jobs: list[JobSummary]
    next: str | None = Field(
        description="Send as `cursor` for the next page (older jobs); null on the last page."
    )


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus


class ProgressUpdate(BaseModel):
    """The data of a `progress` event: one more piece of a long recording is recognized."""

    job_id: str
    piece_index: int
    progress: Progress
    segments: list[Segment]


class EngineLoad(BaseModel):
    live: int = Field(0, description="Recognizers serving the engine, heard from lately.")
    slots: int = 0
    busy: int = 0
    problems: list[str] = Field(default_factory=list, description="What unhealthy ones report.")


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    broker: Literal["connected"] = "connected"
    database: Literal["answering"] = "answering"
    recognizers: dict[str, EngineLoad] = Field(
        description="Per engine; a job for an engine none serves waits in its queue."
    )


class Problem(BaseModel):
    detail: str


class TaskAccepted(BaseModel):
    job_id: str
    file_id: str


class TaskState(BaseModel):
    job_id: str
    text: str | None = None
    status: str | None = None
    error: JobError | None = None


class NativeResult(BaseModel):
    job_id: str
    text: str


class NativeTimeout(BaseModel):
    detail: str
    job_id: str


def multipart_form(
    required: list[str], properties: dict[str, Any], one_of: list[str] | None = None
) -> dict[str, Any]:
    """OpenAPI for a route that reads its multipart body itself (FastAPI cannot infer it);
    `one_of` names fields of which exactly one must be sent."""
    schema: dict[str, Any] = {"type": "object", "required": required, "properties": properties}
    if one_of:
        schema["oneOf"] = [{"required": [name]} for name in one_of]
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}},
        "parameters": [IDEMPOTENCY_KEY],
    }


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any string of your choosing, one per job. A request that repeats a key you"
    " sent within 24 hours returns the job the first one created instead of creating another,"
    " so a client may retry after a network error without paying twice.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


FILE = {"type": "string", "format": "binary"}
HOTWORDS = {
    "type": "string",
    "maxLength": 200,
    "description": "Names and terms the recording may hold, comma-separated (at most 20, 200"
    " characters in all), so that they come out spelled right. Whisper takes them as hotwords,"
    " online engines as a prompt; Sphinx and Google ignore them.",
}
UPLOAD_FIELDS: dict[str, Any] = {
    "file": FILE,
    "language": {
        "type": "string",
        "description": "A code such as 'en', or 'auto'; the default is set per deployment.",
    },
    "engine": {"type": "string", "enum": list(KNOWN_ENGINES)},
    "task": {
        "type": "string",
        "enum": list(TASKS),
        "description": "`translate` gives the words in English (the multilingual Whisper"
        " engines only); the language, unless sent, is then detected.",
    },
    "hotwords": HOTWORDS,
    "callback_url": {
        "type": "string",
        "format": "uri",
        "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
        "maxLength": 2048,
        "description": "Where to POST the job document once it is done or failed.",
    },
}
UPLOAD_BODY = multipart_form(["file"], UPLOAD_FIELDS)

# Routes that also take the media's address instead of the file: exactly one of the two.
JOB_BODY = multipart_form(
    [],
    {
        **UPLOAD_FIELDS,
        "url": {
            "type": "string",
            "format": "uri",
            "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
            "maxLength": 2048,
            "description": "Instead of `file`: where the service fetches the media from (http or"
            " https, no user name or password). The job id comes back at once; a fetch that"
            " fails ends the job `failed` (`fetch_refused`, `fetch_failed`, `too_large`).",
        },
        "diarize": {
            "type": "boolean",
            "description": "Label who speaks: every segment and word gets `speaker` (S1, S2, ... in"
            " order of first appearance, or a known speaker's name).",
        },
        **{
            name: {"type": "integer", "minimum": 1, "maximum": MAX_SPEAKERS, "description": what}
            for name, what in (
                ("speakers", "With diarize: exactly this many speakers."),
                ("min_speakers", "With diarize: at least this many speakers."),
                ("max_speakers", "With diarize: at most this many speakers."),
            )
        },
        "speaker_names[]": {
            "type": "array",
            "items": {"type": "string", "maxLength": 64},
            "description": "Known speakers' names, in the order of their reference clips.",
        },
        "speaker_references[]": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Each known speaker's voice: 2 to 10 seconds of audio as a data URL"
            " (data:audio/wav;base64,...), at most 4 MiB each. Multipart only.",
        },
    },
    one_of=["file", "url"],
)


def with_field_bodies(body: dict[str, Any], multipart_only: tuple[str, ...]) -> dict[str, Any]:
    """`body` (a multipart_form) that also takes its fields, without the file or anything else
    `multipart_only`, as a JSON object or a url-encoded form, the media given by `url`."""
    multipart = body["requestBody"]["content"]["multipart/form-data"]["schema"]
    properties = {
        name: schema
        for name, schema in multipart["properties"].items()
        if name not in multipart_only
    }
    # A JSON body may give the terms as a list, as a form gives the field once per term.
    properties["hotwords"] = {
        "description": HOTWORDS["description"],
        "oneOf": [
            {"type": "string", "maxLength": 200},
            {"type": "array", "items": {"type": "string"}, "maxItems": 20},
        ],
    }
    fields = {"type": "object", "required": ["url"], "properties": properties}
    content = {
        **body["requestBody"]["content"],
        "application/json": {"schema": fields},
        "application/x-www-form-urlencoded": {"schema": fields},
    }
    return {**body, "requestBody": {**body["requestBody"], "content": content}}


JOB_BODY = with_field_bodies(JOB_BODY, MULTIPART_ONLY)


def problems(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in status_codes}


UPLOAD_PROBLEMS = problems(400, 409, 413, 415, 422, 429, 503)
