"""A worker's probes, served beside its Prometheus metrics on STT_METRICS_PORT.

`/livez` answers from the HTTP server's own thread, so it can tell a stuck event loop from a
live one: a task on the loop beats every second, and the route fails once the beat is older
than STALE_AFTER_SECONDS. A handler that blocks the loop, or a loop stuck for any other reason
while the process lives on, fails it; a broker away does not (the connection mends itself, and restarting the
worker would not bring the broker back). `/readyz` says whether the worker is consuming."""

import asyncio
import enum
import json
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

BEAT_SECONDS = 1.0
# Long enough that a busy but healthy loop never trips it, short enough that a stuck one is
# replaced within a minute (with the probe's period and failure threshold).
STALE_AFTER_SECONDS = 15.0

LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"


class Phase(enum.StrEnum):
    STARTING = "starting"
    CONSUMING = "consuming"
    STOPPING = "stopping"


class Liveness:
    """What the probes read: when the event loop last beat, and the worker's phase. Written on
    the loop, read from the HTTP thread; a float and an enum are swapped whole, so no lock."""

    def __init__(self) -> None:
        self._beat_at = time.monotonic()
        self.phase = Phase.STARTING

    def beat(self) -> None:
        self._beat_at = time.monotonic()

    def silent_seconds(self) -> float:
        return time.monotonic() - self._beat_at

    def is_alive(self) -> bool:
        return self.silent_seconds() < STALE_AFTER_SECONDS

    async def keep_beating(self) -> None:
        """Beat every BEAT_SECONDS for as long as the loop runs this task."""
        while True:
            self.beat()
            await asyncio.sleep(BEAT_SECONDS)


StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def probes_app(liveness: Liveness, metrics: WsgiApp) -> WsgiApp:
    """The probes at their paths, the metrics at every other one (as prometheus_client does)."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == LIVENESS_PATH:
            healthy = liveness.is_alive()
        elif path == READINESS_PATH:
            healthy = liveness.is_alive() and liveness.phase is Phase.CONSUMING
        else:
            return metrics(environ, start_response)
        body = json.dumps(
            {
                "status": "ok" if healthy else "failing",
                "phase": liveness.phase.value,
                "loop_silent_seconds": round(liveness.silent_seconds(), 3),
            }
        ).encode()
        status = "200 OK" if healthy else "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json")])
        return [body]

    return app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would drown the service's own log."""


def serve_probes(port: int, liveness: Liveness, host: str = "0.0.0.0") -> WSGIServer:
    """Serve the probes and the metrics on `port` from a thread of their own."""
    server = make_server(
        host,
        port,
        probes_app(liveness, make_wsgi_app()),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    return server
