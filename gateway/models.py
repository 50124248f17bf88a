"""`GET /v1/models`: the engines this deployment offers, in OpenAI's list shape so that
`client.models.list()` works, with what the fleet has for each right now."""

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.routes import ServicesDep
from gateway.submit import PACE_SAMPLE, Services
from shared.engines import KNOWN_ENGINES, supported_languages
from shared.fleet import RecognizerEntry

router = APIRouter(tags=["fleet"])


class EngineModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="When the longest-running recognizer of it started (Unix).")
    owned_by: str = "stt-pipeline"
    languages: list[str]
    recognizers: int = Field(description="Live recognizers serving it.")
    slots: int = Field(description="Their engine slots, and how many are busy.")
    busy: int
    queued: int = Field(description="Messages (whole recordings and pieces) waiting for a slot.")
    estimated_wait_seconds: float | None = Field(
        description="An estimate: the queue times the recent recognition time per message, over"
        " the live slots. None while no slot serves the engine or nothing was measured yet."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EngineModel]


@router.get(
    "/v1/models", response_model=ModelList, summary="The engines, and the fleet behind each"
)
async def list_models(services: ServicesDep) -> ModelList:
    live = await services.fleet.live()
    offered = set(services.settings.engines) | await services.fleet.served_recently()
    return ModelList(
        data=[
            await _engine_model(services, engine, [e for e in live if engine in e.engines])
            for engine in KNOWN_ENGINES
            if engine in offered
        ]
    )


async def _engine_model(
    services: Services, engine: str, serving: list[RecognizerEntry]
) -> EngineModel:
    topology = services.broker.topology
    queued = 0
    for queue in (topology.recognizers[engine], topology.pieces[engine]):
        queued += (await services.broker.queue_state(queue.name)).ready
    slots = sum(entry.slots for entry in serving)
    pace = await services.jobs.recognition_seconds_per_piece(engine, PACE_SAMPLE)
    started = min((entry.started_at for entry in serving), default=None)
    return EngineModel(
        id=engine,
        created=int(started.timestamp()) if started else 0,
        languages=sorted(supported_languages(engine, services.settings.whisper_model)),
        recognizers=len(serving),
        slots=slots,
        busy=sum(entry.busy for entry in serving),
        queued=queued,
        estimated_wait_seconds=round(queued * pace / slots, 1) if slots and pace else None,
    )
