"""`POST /v1/audio/transcriptions` and `/v1/audio/translations`, shaped like OpenAI's (the forms
and answers are gateway.openai_compat's)."""

from fastapi import APIRouter, Request, Response

from gateway.openai_compat import (
    OPENAI_FORM,
    OPENAI_PREFIX,
    OPENAI_RESPONSES,
    TRANSLATION_FORM,
    answer,
    read_openai_form,
    read_translation_form,
)
from gateway.routes.deps import ServicesDep

router = APIRouter(tags=["OpenAI-compatible"])


@router.post(
    f"{OPENAI_PREFIX}transcriptions",
    openapi_extra=OPENAI_FORM,
    responses=OPENAI_RESPONSES,
    summary="Transcribe audio, as OpenAI's endpoint of the same name does",
)
async def create_transcription(request: Request, services: ServicesDep) -> Response:
    return await answer(request, services, read_openai_form)


@router.post(
    f"{OPENAI_PREFIX}translations",
    openapi_extra=TRANSLATION_FORM,
    responses=OPENAI_RESPONSES,
    summary="Translate speech into English text, as OpenAI's endpoint of the same name does",
)
async def create_translation(request: Request, services: ServicesDep) -> Response:
    return await answer(request, services, read_translation_form)
