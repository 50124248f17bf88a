"""Client events of a live session as they arrive: JSON text, with the audio of an append
decoded only as far as the session's pace allows. Synchronous, and costly for a large message:
the gateway runs it in the live sessions' own threads, never on the event loop."""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

APPEND = "input_audio_buffer.append"
# base64 turns 3 bytes into 4 characters; 6 bytes (8 characters) are whole 16-bit samples too.
_WHOLE_BYTES, _WHOLE_CHARACTERS = 6, 8


class SessionError(Exception):
    """A client event that cannot be done: told in an `error` event, and the session goes on."""

    def __init__(
        self,
        code: str,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.event_id = event_id
        self.kind = kind

    def event(self) -> dict[str, Any]:
        """The `error` event that tells the client."""
        error = {"type": self.kind, "code": self.code, "message": self.message, "param": self.param}
        return {"type": "error", "error": {**error, "event_id": self.event_id}}


@dataclass(frozen=True)
class ClientEvent:
    """One client event; for an append, its PCM16 as far as it was taken, and how many bytes
    beyond that were dropped."""

    event: dict[str, Any]
    event_id: str | None = None
    pcm: bytes = b""
    dropped_bytes: int = 0

    @property
    def kind(self) -> str:
        return str(self.event["type"])


def client_event(text: str, audio_bytes_allowed: int) -> ClientEvent:
    """The event `text` holds; an append's audio is decoded up to `audio_bytes_allowed`."""
    try:
        event = json.loads(text)
    except json.JSONDecodeError as error:
        raise SessionError("invalid_json", f"The event is not JSON: {error}.") from error
    except RecursionError as error:  # thousands of nested brackets
        raise SessionError("invalid_json", "The event is nested too deeply.") from error
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise SessionError("invalid_event", "An event is a JSON object with a 'type'.")
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    if event["type"] != APPEND:
        return ClientEvent(event, event_id)
    audio = event.pop("audio", None)
    try:
        pcm, dropped = _pcm(audio, audio_bytes_allowed)
    except SessionError as error:
        error.event_id = event_id
        raise
    return ClientEvent(event, event_id, pcm, dropped)


def _pcm(audio: Any, allowed: int) -> tuple[bytes, int]:
    if not isinstance(audio, str) or not audio:
        raise SessionError("invalid_value", "audio must be base64-encoded PCM16.", "audio")
    if len(audio) % 4:
        raise _not_base64("its length is not a multiple of 4")
    size = len(audio) // 4 * 3 - audio[-2:].count("=")
    if size % 2:
        raise SessionError(
            "invalid_value",
            "audio must be whole 16-bit samples (an even number of bytes).",
            "audio",
        )
    taken = audio if size <= allowed else audio[: allowed // _WHOLE_BYTES * _WHOLE_CHARACTERS]
    try:
        pcm = base64.b64decode(taken, validate=True)
    except (binascii.Error, ValueError) as error:
        raise _not_base64(str(error)) from error
    return pcm, size - len(pcm)


def _not_base64(reason: str) -> SessionError:
    return SessionError("invalid_value", f"audio is not valid base64: {reason}.", "audio")
