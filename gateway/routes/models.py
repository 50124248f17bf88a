"""`GET /v1/models`: the engines this deployment offers, in OpenAI's list shape so that
`client.models.list()` works, with what the fleet has for each right now."""

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.backlog import EngineBacklog
from gateway.routes.deps import ServicesDep
from gateway.services import Services
from shared.engines import ENGINE_SPECS
from shared.provenance import ModelProvenance

router = APIRouter(tags=["fleet"])


class EngineModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="When the longest-running recognizer of it started (Unix).")
    owned_by: str = "stt-pipeline"
    model: str = Field(
        description="The model the engine runs: tiny.en (or STT_WHISPER_MODEL) for"
        " faster-whisper, base for whisper-base."
    )
    description: str = Field(description="What it is good at: the fast one, the accurate one.")
    aliases: list[str] = Field(
        default_factory=list,
        description="Other names the OpenAI routes take for it as `model` (whisper-tiny.en).",
    )
    languages: list[str]
    tasks: list[str] = Field(
        description="`transcribe`, and `translate` (into English) where it can."
    )
    default: bool = Field(False, description="The engine of jobs that name none.")
    provenance: list[ModelProvenance] = Field(
        default_factory=list,
        description="What the live recognizers loaded for it: the model, the SHA-256 of its"
        " weights and the software versions (one entry for each that differs).",
    )
    recognizers: int = Field(description="Live recognizers serving it.")
    slots: int = Field(description="Their engine slots, and how many are busy.")
    busy: int
    queued: int = Field(description="Messages (whole recordings and pieces) waiting for a slot.")
    estimated_wait_seconds: float | None = Field(
        description="An estimate: the queue times the recent recognition time per message, over"
        " the live slots. None while no slot serves the engine or nothing was measured yet."
    )
    labels_speakers: bool = Field(
        False,
        description="Whether jobs of the engine may ask for speaker labels (`diarize`): it times"
        " words, and a recognizer with the speaker model loaded served it within the hour.",
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EngineModel]


@router.get(
    "/v1/models", response_model=ModelList, summary="The engines, and the fleet behind each"
)
async def list_models(services: ServicesDep) -> ModelList:
    offered = set(services.settings.engines) | await services.fleet.served_recently()
    speaker_labels_served = await services.fleet.speaker_labels_served_recently()
    return ModelList(
        data=[
            _engine_model(
                services, engine, await services.backlog.of(engine), speaker_labels_served
            )
            for engine in ENGINE_SPECS
            if engine in offered
        ]
    )


def _engine_model(
    services: Services, engine: str, backlog: EngineBacklog, speaker_labels_served: set[str]
) -> EngineModel:
    started = min((entry.started_at for entry in backlog.serving), default=None)
    loaded = [entry.models[engine] for entry in backlog.serving if engine in entry.models]
    spec = ENGINE_SPECS[engine].configured(services.settings.whisper_model)
    return EngineModel(
        id=engine,
        created=int(started.timestamp()) if started else 0,
        model=spec.model,
        description=spec.summary,
        aliases=[alias for alias in spec.aliases if alias != engine],
        languages=sorted(spec.languages),
        tasks=list(spec.tasks),
        default=engine == services.settings.default_engine,
        provenance=[model for n, model in enumerate(loaded) if model not in loaded[:n]],
        recognizers=len(backlog.serving),
        slots=backlog.slots,
        busy=sum(entry.busy for entry in backlog.serving),
        queued=backlog.queued,
        estimated_wait_seconds=backlog.wait_seconds(backlog.queued),
        labels_speakers=spec.times_words and engine in speaker_labels_served,
    )
