"""Response bodies of the HTTP API, besides the Job document itself."""

from typing import Any

from pydantic import BaseModel

from shared.engines import KNOWN_ENGINES
from shared.jobs import JobError, JobStatus
from shared.transcripts import Segment


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus


class TranscriptJson(BaseModel):
    job_id: str
    text: str
    language: str
    duration_seconds: float | None
    confidence: float | None
    segments: list[Segment]


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


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "language": {
                            "type": "string",
                            "description": "Language code such as 'en'; the default is set per deployment.",
                        },
                        "engine": {"type": "string", "enum": list(KNOWN_ENGINES)},
                    },
                }
            }
        },
    }
}


def problems(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in status_codes}
