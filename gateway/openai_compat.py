"""`POST /v1/audio/transcriptions` and `/v1/audio/translations`, shaped like OpenAI's, so its
clients work unchanged.

The upload goes through the same pipeline as `POST /v1/jobs`; the request waits for the job's
own finishing event and answers in OpenAI's response and error shapes.
"""

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError

from gateway.auth import caller_of
from gateway.choices import (
    RefusedChoice,
    UnfitHotwords,
    UnknownEngine,
    UnsupportedLanguage,
    UnsupportedTask,
    choose_options,
)
from gateway.openai_formats import DIARIZED, RESPONSE_FORMATS, render
from gateway.schemas import FILE, HOTWORDS, multipart_form
from gateway.services import Services
from gateway.settings import GatewaySettings
from gateway.speakers import SpeakerLabelsRefused, speaker_labels_asked
from gateway.submit import JobRequest, submit_job
from gateway.upload import Upload
from shared.engines import AUTO_LANGUAGE, TRANSCRIBE, TRANSLATE, engine_named
from shared.faults import BrokerUnavailable
from shared.jobs.models import JobStatus

OPENAI_PREFIX = "/v1/audio/"
DEFAULT_MODEL = "whisper-1"
# OpenAI's model that labels speakers: here the default engine, with labels.
DIARIZE_MODEL = "gpt-4o-transcribe-diarize"
GRANULARITIES = ("segment", "word")

# The fields OpenAI's translation form has; its transcription form has a few more.
TRANSLATION_FIELDS: dict[str, Any] = {
    "file": FILE,
    "model": {
        "type": "string",
        "description": "'whisper-1' (this service's default), an engine it offers, or the"
        " model of a local Whisper engine ('whisper-tiny.en', 'whisper-base').",
    },
    "prompt": {"type": "string"},
    "response_format": {"type": "string", "enum": list(RESPONSE_FORMATS)},
    "temperature": {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "description": "Sampling temperature for the Whisper engines; by default Whisper's "
        "own schedule, which starts at 0 and rises when decoding fails.",
    },
    "hotwords": HOTWORDS,
}
OPENAI_FORM = multipart_form(
    ["file", "model"],
    {
        **TRANSLATION_FIELDS,
        "model": {
            "type": "string",
            "description": "'whisper-1' (this service's default) or an engine it offers;"
            f" '{DIARIZE_MODEL}' is the default engine with speaker labels.",
        },
        "language": {"type": "string"},
        "timestamp_granularities[]": {
            "type": "array",
            "items": {"type": "string", "enum": list(GRANULARITIES)},
        },
        "known_speaker_names[]": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Names of known speakers, with `diarized_json`; one clip each.",
        },
        "known_speaker_references[]": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Each known speaker's voice: 2 to 10 seconds of audio as a data URL.",
        },
    },
)
TRANSLATION_FORM = multipart_form(["file", "model"], TRANSLATION_FIELDS)
ERROR_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                            "param": {"type": ["string", "null"]},
                            "code": {"type": ["string", "null"]},
                        },
                    }
                },
            }
        }
    }
}


class OpenAIError(Exception):
    def __init__(
        self, status_code: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code

    def response(self) -> JSONResponse:
        kind = "invalid_request_error" if self.status_code < 500 else "server_error"
        body = {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        return JSONResponse({"error": body}, status_code=self.status_code)


def read_openai_form(settings: GatewaySettings, upload: Upload) -> JobRequest:
    """What an OpenAI-style transcription form asks of the job; OpenAIError if it cannot be done."""
    return _read_form(settings, upload, TRANSCRIBE)


def read_translation_form(settings: GatewaySettings, upload: Upload) -> JobRequest:
    """What an OpenAI-style translation form asks: English words, from whatever language."""
    return _read_form(settings, upload, TRANSLATE)


def _read_form(settings: GatewaySettings, upload: Upload, task: str) -> JobRequest:
    model = upload.field("model")
    if not model:
        raise OpenAIError(400, "You must provide a model parameter.", "model")
    if (upload.field("response_format") or "json") not in RESPONSE_FORMATS:
        raise OpenAIError(
            400, f"response_format must be one of {', '.join(RESPONSE_FORMATS)}.", "response_format"
        )
    for granularity in upload.fields.get("timestamp_granularities[]", []):
        if granularity not in GRANULARITIES:
            raise OpenAIError(
                400,
                "timestamp_granularities[] takes 'segment' and 'word'.",
                "timestamp_granularities",
            )
    if model in (DEFAULT_MODEL, DIARIZE_MODEL):
        engine = settings.default_engine
    else:  # an engine id, or its model's name (whisper-tiny.en)
        engine = engine_named(model, settings.whisper_model)
    # OpenAI's translation form has no language: the recording's is detected.
    language = upload.field("language") if task == TRANSCRIBE else AUTO_LANGUAGE
    diarized = upload.field("response_format") == DIARIZED or model == DIARIZE_MODEL
    try:
        labels_asked = speaker_labels_asked(upload, asked=diarized)
        options = choose_options(
            settings,
            engine=engine,
            language=language,
            task=task,
            hotwords=upload.fields.get("hotwords", []),
            prompt=upload.field("prompt"),
            temperature=_temperature(upload),
            speaker_labels=labels_asked.speaker_labels,
        )
    except RefusedChoice as refused:
        raise openai_refusal(refused) from refused
    except SpeakerLabelsRefused as refused:
        raise speaker_labels_refusal(refused) from refused
    return JobRequest(options, labels_asked.reference_clips)


# OpenAI's parameter and error code for each form field this service may refuse.
_REFUSALS = {
    UnknownEngine.field: ("model", "model_not_found"),
    UnsupportedLanguage.field: ("language", "unsupported_language"),
    UnsupportedTask.field: ("model", "unsupported_task"),
    UnfitHotwords.field: ("hotwords", "invalid_value"),
}


def openai_refusal(refused: RefusedChoice) -> OpenAIError:
    param, code = _REFUSALS[refused.field]
    return OpenAIError(400, refused.message, param, code)


# OpenAI's names for the speaker fields of POST /v1/jobs.
_SPEAKER_PARAMS = {
    "diarize": "response_format",
    "speaker_names": "known_speaker_names",
    "speaker_references": "known_speaker_references",
}


def speaker_labels_refusal(refused: SpeakerLabelsRefused) -> OpenAIError:
    param = _SPEAKER_PARAMS.get(refused.param, refused.param)
    return OpenAIError(400, refused.message, param, "unsupported_diarization")


def _temperature(upload: Upload) -> float | None:
    value = upload.field("temperature")
    if value is None:
        return None
    try:
        temperature = float(value)
        if 0 <= temperature <= 1:
            return temperature
    except ValueError:
        pass
    raise OpenAIError(400, "temperature must be a number from 0 to 1.", "temperature")


OPENAI_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/plain": {"schema": {"type": "string"}},
            "application/x-subrip": {"schema": {"type": "string"}},
            "text/vtt": {"schema": {"type": "string"}},
        }
    },
    **{code: ERROR_BODY for code in (400, 409, 413, 415, 429, 503, 504)},
}


async def answer(
    request: Request,
    services: Services,
    read_fields: Callable[[GatewaySettings, Upload], JobRequest],
) -> Response:
    caller = caller_of(request).name
    try:
        with services.waits.holding(caller, services.settings.max_waits_per_key):
            job, upload = await submit_job(services, request, read_fields)
            wait_seconds = services.settings.native_wait_seconds
            finished = await services.watcher.wait_until_finished(job.job_id, wait_seconds)
    except OpenAIError as error:
        return error.response()
    except RefusedChoice as refused:
        return openai_refusal(refused).response()
    except SpeakerLabelsRefused as refused:
        return speaker_labels_refusal(refused).response()
    except HTTPException as error:
        code = "rate_limit_exceeded" if error.status_code == 429 else None
        # OpenAI answers every malformed request 400.
        status = 400 if error.status_code == 422 else error.status_code
        response = OpenAIError(status, str(error.detail), code=code).response()
        response.headers.update(error.headers or {})
        return response
    except (PyMongoError, BrokerUnavailable):
        return OpenAIError(503, "The service is unavailable; try again shortly.").response()
    if finished is None:
        message = f"Not finished within {wait_seconds:.0f} s; poll GET /v1/jobs/{job.job_id}."
        return OpenAIError(504, message, code="timeout").response()
    if finished.status is JobStatus.FAILED and finished.error is not None:
        return OpenAIError(400, finished.error.message, "file", finished.error.code).response()
    granularities = upload.fields.get("timestamp_granularities[]", [])
    return render(finished, upload.field("response_format") or "json", granularities)
