"""The gateway's FastAPI application: its routes, the authentication every route passes, the
error answers, and, when it runs for real, the connections and consumers it starts with (the
broker, the job store, the job watcher, callbacks). `python -m gateway` serves it with uvicorn."""

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request, Response, Security
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gateway.auth import Keys, Unauthorized, authentication, bearer
from gateway.backlog import Backlog
from gateway.callbacks import CallbackHandler, callback_client
from gateway.finished import FinishedHandler
from gateway.live.sessions import LiveSessions
from gateway.openai_compat import OPENAI_PREFIX, OpenAIError
from gateway.pages import add_pages
from gateway.routes import health, jobs, live, models, openai, transcripts, tutorial
from gateway.services import Services
from gateway.settings import GatewaySettings
from gateway.watcher import JobWatcher
from shared.broker import Subscription
from shared.events import Event
from shared.faults import BrokerUnavailable
from shared.fleet import Fleet
from shared.media_store import open_store
from shared.worker import connected

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
HTTP_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def create_app(settings: GatewaySettings, services: Services | None = None) -> FastAPI:
    """The gateway. Given no `services`, it connects to the broker and the database as it
    starts; tests of the HTTP surface pass theirs in, and need neither."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            connected(settings) as (broker, jobs),
            callback_client(settings.callback_timeout_seconds) as http,
        ):
            watcher = JobWatcher(broker, jobs)
            await watcher.start()
            callbacks = CallbackHandler(
                jobs,
                broker,
                http,
                settings.callback_secret,
                frozenset(settings.callback_allowed_hosts),
                settings.callback_timeout_seconds,
            )
            finished = FinishedHandler(jobs, broker.publish, settings, callbacks)
            await broker.consume(
                Subscription(
                    broker.topology.callbacks, Event, finished, settings.callback_concurrency
                )
            )
            fleet = Fleet(jobs.database, settings.namespace)
            store = open_store(settings.media_store, jobs.database, settings.media_dir)
            backlog = Backlog(broker, jobs, fleet)
            app.state.services = Services(settings, broker, jobs, store, watcher, fleet, backlog)
            log.info("gateway ready on http://%s:%d", settings.host, settings.port)
            yield
            await broker.stop_consuming(settings.shutdown_grace_seconds)

    keys = Keys(settings.api_keys, settings.admin_keys)
    app = FastAPI(
        dependencies=[Depends(authentication(keys))],
        title="Speech-to-text service",
        summary="Upload media, get a job id at once, collect the transcript when it is done.",
        version="1.0.0",
        lifespan=lifespan if services is None else None,
        # Served from installed files by add_pages, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    add_pages(app)
    if services is not None:
        app.state.services = services
    app.state.keys = keys
    # Without keys configured the API is open, and its OpenAPI document declares no security.
    documented = [Security(bearer)] if keys.required else []
    app.include_router(health.router)
    for protected in (jobs, transcripts, tutorial, openai, models):
        app.include_router(protected.router, dependencies=documented)
    # The live route finds its caller itself: browsers send the key as a subprotocol, not a header.
    app.include_router(live.router)
    app.state.live_sessions = LiveSessions(settings)
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PyMongoError, _unavailable("The job database"))
    app.add_exception_handler(BrokerUnavailable, _unavailable("The message broker"))
    return app


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code != 405:
        return await http_exception_handler(request, error)
    # Starlette names only the first route whose path matches; list every method of the path.
    allowed = ", ".join(
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    )
    return JSONResponse(
        {"detail": f"{request.method} is not allowed here; use {allowed}."},
        status_code=405,
        headers={"Allow": allowed},
    )


async def _unauthorized(request: Request, _error: Exception) -> JSONResponse:
    message = "A valid API key is needed: send it as 'Authorization: Bearer <key>'."
    if request.url.path.startswith(OPENAI_PREFIX):
        response = OpenAIError(401, message, code="invalid_api_key").response()
    else:
        response = JSONResponse({"detail": message}, status_code=401)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _unavailable(what: str):  # type: ignore[no-untyped-def]
    async def handler(_request: Request, error: Exception) -> JSONResponse:
        log.warning("%s is unavailable: %r", what, error)
        return JSONResponse(
            {"detail": f"{what} is unavailable; try again shortly."},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    return handler
