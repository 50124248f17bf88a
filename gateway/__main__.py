import asyncio
import signal
import socket
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI

from gateway.app import create_app
from gateway.live.sessions import LiveSessions
from gateway.memory import return_large_blocks
from gateway.settings import GatewaySettings
from shared.worker import start


def _already_drained(_signum: int, _frame: FrameType | None) -> None:
    """uvicorn drains on SIGTERM/SIGINT, then raises the signal again for the previous handler;
    this handler lets the process end with status 0 after that clean shutdown."""


class GatewayServer(uvicorn.Server):
    """uvicorn, which lets the live sessions hand out what they hold and close before it closes
    every connection."""

    def __init__(
        self, config: uvicorn.Config, sessions: LiveSessions, settings: GatewaySettings
    ) -> None:
        super().__init__(config)
        self._sessions = sessions
        self._grace = settings.shutdown_grace_seconds
        self._unready = settings.shutdown_unready_seconds

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        unready_until = time.monotonic() + self._unready
        # /readyz answers 503 from here on. Half the grace: uvicorn's own wait for the
        # connections left keeps the other half.
        await self._sessions.stop_all(self._grace / 2)
        # Still taking connections while proxies notice: one closed listener would reset the
        # requests already sent to it.
        await asyncio.sleep(max(0.0, unready_until - time.monotonic()))
        await super().shutdown(sockets)


def server_config(app: FastAPI, settings: GatewaySettings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # The live sessions take the first half of the grace (GatewayServer.shutdown).
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_seconds / 2)),
        ws_max_size=settings.live_max_message_bytes,
        # One message waits while the session is not read (paced, or held back): websockets'
        # default queue of 32 would hold 32 of the largest messages for each session.
        ws_max_queue=1,
        # No compression: a megabyte of silence would cost its sender a kilobyte, and the
        # frames of many such messages, read at once, would all be inflated at once.
        ws_per_message_deflate=False,
    )


async def run(settings: GatewaySettings) -> None:
    return_large_blocks()
    app = create_app(settings)
    config = server_config(app, settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _already_drained)
    sessions: LiveSessions = app.state.live_sessions
    await GatewayServer(config, sessions, settings).serve()


if __name__ == "__main__":
    start("gateway", GatewaySettings, run)
