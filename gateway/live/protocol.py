"""The client events of a transcription session, OpenAI's Realtime events, and the handler each
type goes to: one table, filled by the session with a decorator on each handler; and the codes
the gateway closes a session's socket with."""

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from gateway.live.events import APPEND, ClientEvent, SessionError

SESSION_UPDATE = "session.update"
BETA_SESSION_UPDATE = "transcription_session.update"  # the beta shape of session.update
COMMIT = "input_audio_buffer.commit"
CLEAR = "input_audio_buffer.clear"
CLIENT_EVENTS = (SESSION_UPDATE, BETA_SESSION_UPDATE, APPEND, COMMIT, CLEAR)
# How the gateway closes a session's socket.
CLOSE_POLICY = 1008
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013

SessionT = TypeVar("SessionT")
Handler = Callable[[SessionT, ClientEvent], Awaitable[None]]


class EventRouter(Generic[SessionT]):
    """Which handler of a session takes each client event type."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler[SessionT]] = {}

    def on(self, *kinds: str) -> Callable[[Handler[SessionT]], Handler[SessionT]]:
        """Register the decorated handler for the client event types `kinds`."""
        unknown = set(kinds) - set(CLIENT_EVENTS)
        if unknown:
            raise ValueError(f"not a client event of a transcription session: {unknown}")

        def register(handler: Handler[SessionT]) -> Handler[SessionT]:
            for kind in kinds:
                self._handlers[kind] = handler
            return handler

        return register

    async def dispatch(self, session: SessionT, event: ClientEvent) -> None:
        handler = self._handlers.get(event.kind)
        if handler is None:
            raise SessionError(
                "unknown_event",
                f"Unknown event type {event.kind!r}; a transcription session takes"
                f" {SESSION_UPDATE}, {APPEND}, {COMMIT} and {CLEAR}.",
                "type",
            )
        await handler(session, event)
