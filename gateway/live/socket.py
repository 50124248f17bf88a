"""A live session's WebSocket: each server event sent whole with an id of its own, one at a
time, and nothing sent or raised once the client has gone."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import MutableMapping
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState


class SessionSocket:
    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._sending = asyncio.Lock()

    async def send(self, event: dict[str, Any]) -> None:
        event = {"event_id": f"event_{uuid.uuid4().hex[:20]}", **event}
        async with self._sending:
            if self._websocket.application_state is not WebSocketState.CONNECTED:
                return
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._websocket.send_text(json.dumps(event))

    async def receive(self, stopping: asyncio.Event) -> MutableMapping[str, Any] | None:
        """The client's next message, or None once `stopping` is set."""
        if stopping.is_set():
            return None
        receiving = asyncio.ensure_future(self._websocket.receive())
        stopped = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({receiving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not receiving.done():
                receiving.cancel()
        return receiving.result() if receiving.done() and not receiving.cancelled() else None

    async def close(self, code: int, reason: str) -> None:
        if self._websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._websocket.close(code, reason)
