import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError

from gateway.callbacks import CallbackHandler
from gateway.openai_compat import router as openai_router
from gateway.routes import router
from gateway.settings import GatewaySettings
from gateway.submit import Services
from gateway.watcher import JobWatcher
from shared.broker import Subscription
from shared.events import Event
from shared.faults import BrokerUnavailable
from shared.media import MediaPaths
from shared.worker import connected

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
USER_AGENT = "stt-pipeline-gateway/1.0"


def create_app(settings: GatewaySettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        media = MediaPaths(settings.media_dir)
        media.create_folders()
        timeout = httpx.Timeout(settings.callback_timeout_seconds)
        async with (
            connected(settings) as (broker, jobs),
            httpx.AsyncClient(timeout=timeout, headers={"User-Agent": USER_AGENT}) as http,
        ):
            watcher = JobWatcher(broker, jobs)
            await watcher.start()
            callbacks = CallbackHandler(
                jobs, http, settings.callback_secret, len(settings.retry_delays_seconds)
            )
            await broker.consume(
                Subscription(
                    broker.topology.callbacks, Event, callbacks, settings.callback_concurrency
                )
            )
            app.state.services = Services(settings, broker, jobs, media, watcher)
            log.info("gateway ready on http://%s:%d", settings.host, settings.port)
            yield
            await broker.stop_consuming(settings.shutdown_grace_seconds)

    app = FastAPI(
        title="Speech-to-text service",
        summary="Upload media, get a job id at once, collect the transcript when it is done.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.include_router(router)
    app.include_router(openai_router)
    app.add_exception_handler(PyMongoError, _unavailable("The job database"))
    app.add_exception_handler(BrokerUnavailable, _unavailable("The message broker"))
    return app


def _unavailable(what: str):  # type: ignore[no-untyped-def]
    async def handler(_request: Request, error: Exception) -> JSONResponse:
        log.warning("%s is unavailable: %r", what, error)
        return JSONResponse(
            {"detail": f"{what} is unavailable; try again shortly."},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    return handler
