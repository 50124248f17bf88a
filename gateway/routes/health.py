"""Probes and metrics: open even when API keys are required (gateway.auth.PUBLIC_PATHS), for
probes, load balancers and scrapers."""

import contextlib

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from gateway.routes.deps import ServicesDep
from gateway.schemas import EngineLoad, Readiness, problems
from shared import metrics
from shared.faults import BrokerUnavailable

router = APIRouter(tags=["health"])


@router.get(
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


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Broker and database are reachable; which engines live recognizers serve",
    responses=problems(503),
)
async def readyz(request: Request, services: ServicesDep) -> Readiness:
    if request.app.state.live_sessions.stopping:
        # Draining: a proxy that checks readiness sends new work to another gateway.
        raise HTTPException(503, "This gateway is shutting down.")
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
