"""The formats a finished job's transcript is given out in, each declared once: its name, media
type and how it is written. `GET /v1/jobs/{job_id}/transcript?format=` serves every one, the
command line offers every one, and the page offers what the API document lists. The OpenAI
routes keep OpenAI's own names and meanings, taking `srt` and `vtt` from here.

A new format is one more entry in TRANSCRIPT_FORMATS.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, Field

from shared.jobs.models import Job
from shared.provenance import Provenance
from shared.transcripts import Segment, SpeakerTalk, to_srt, to_turns, to_vtt


class TranscriptJson(BaseModel):
    job_id: str
    text: str
    language: str
    duration_seconds: float | None
    confidence: float | None
    segments: list[Segment]
    provenance: Provenance | None = None
    speakers: list[SpeakerTalk] | None = Field(
        None, description="Who speaks, and how long: when the job labels speakers."
    )

    @classmethod
    def of(cls, job: Job) -> "TranscriptJson":
        return cls(
            job_id=job.job_id,
            text=job.text or "",
            language=job.detected_language or job.language,
            duration_seconds=job.duration_seconds,
            confidence=job.confidence,
            segments=job.segments or [],
            provenance=job.provenance,
            speakers=job.speakers,
        )


@dataclass(frozen=True)
class TranscriptFormat:
    name: str
    media_type: str
    render: Callable[[Job], str]
    """The body, from a finished job (its text is set)."""


def _plain_text(job: Job) -> str:
    # A labelled transcript reads as turns, each opened by its speaker.
    return to_turns(job.segments or []) if job.speakers is not None else job.text or ""


def _json(job: Job) -> str:
    return json.dumps(
        TranscriptJson.of(job).model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")
    )


TRANSCRIPT_FORMATS: dict[str, TranscriptFormat] = {
    chosen.name: chosen
    for chosen in (
        TranscriptFormat("txt", "text/plain", _plain_text),
        TranscriptFormat("json", "application/json", _json),
        TranscriptFormat("srt", "application/x-subrip", lambda job: to_srt(job.segments or [])),
        TranscriptFormat("vtt", "text/vtt", lambda job: to_vtt(job.segments or [])),
    )
}
DEFAULT_FORMAT = "txt"
