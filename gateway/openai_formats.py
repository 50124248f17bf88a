"""OpenAI's response formats, under OpenAI's names and with OpenAI's meanings: its `json` is
the text alone, `verbose_json` adds segments and words, `diarized_json` speakers' turns. Where a
format is the same as one of ours (`srt`, `vtt`), ours (shared.formats) renders it."""

from collections.abc import Callable
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse, PlainTextResponse

from shared.formats import TRANSCRIPT_FORMATS
from shared.jobs.models import Job
from shared.transcripts import Segment

DIARIZED = "diarized_json"

Renderer = Callable[[Job, list[str]], Response]
"""A response from the finished job and the timestamp granularities asked for."""


def render(job: Job, response_format: str, granularities: list[str]) -> Response:
    return OPENAI_FORMATS[response_format](job, granularities)


def _verbose(job: Job, granularities: list[str]) -> Response:
    segments = job.segments or []
    body: dict[str, Any] = {
        "task": job.task,
        "language": job.detected_language or job.language,
        "duration": job.duration_seconds or 0.0,
        "text": job.text or "",
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [_openai_segment(number, s) for number, s in enumerate(segments)]
    if "word" in granularities:
        body["words"] = [
            {"word": w.word, "start": w.start, "end": w.end} for s in segments for w in s.words
        ]
    return JSONResponse(body)


def _ours(name: str) -> Renderer:
    chosen = TRANSCRIPT_FORMATS[name]
    return lambda job, _granularities: Response(chosen.render(job), media_type=chosen.media_type)


OPENAI_FORMATS: dict[str, Renderer] = {
    "json": lambda job, _granularities: JSONResponse({"text": job.text or ""}),
    "text": lambda job, _granularities: PlainTextResponse(job.text or ""),
    "srt": _ours("srt"),
    "verbose_json": _verbose,
    "vtt": _ours("vtt"),
    DIARIZED: lambda job, _granularities: JSONResponse(_diarized(job)),
}
RESPONSE_FORMATS = tuple(OPENAI_FORMATS)


def _diarized(job: Job) -> dict[str, Any]:
    """OpenAI's diarized shape; the speakers are this service's labels (S1, S2, ... or the
    known speakers' names)."""
    return {
        "task": "transcribe",
        "duration": job.duration_seconds or 0.0,
        "text": job.text or "",
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{number}",
                "start": segment.start,
                "end": segment.end,
                "text": segment.text,
                "speaker": segment.speaker or "",
            }
            for number, segment in enumerate(job.segments or [])
        ],
    }


def _openai_segment(number: int, segment: Segment) -> dict[str, Any]:
    return {
        "id": number,
        "seek": 0,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "tokens": [],
        "temperature": segment.temperature or 0.0,
        "avg_logprob": segment.avg_logprob or 0.0,
        "compression_ratio": 0.0,
        "no_speech_prob": segment.no_speech_prob or 0.0,
    }
