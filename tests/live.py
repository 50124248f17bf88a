"""Live sessions the way a client holds them: real speech with pauses, streamed over a real
WebSocket to `/v1/realtime`."""

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests import media

# Three sentences tiny.en recognizes in espeak-ng's voice, with the words to look for.
SENTENCES = (
    (media.SENTENCE, ("quarterly", "report", "finance")),
    ("The weather today is sunny and warm.", ("weather", "sunny", "warm")),
    (
        "Dinner will be served at seven, followed by music in the garden.",
        ("dinner", "music", "garden"),
    ),
)
PAUSE_SECONDS = 1.2
CHUNK_SECONDS = 0.1


def speech_with_pauses(
    folder: Path, sentences: tuple[str, ...], rate: int = 24000, pause: float = PAUSE_SECONDS
) -> bytes:
    """PCM16 mono at `rate`: a pause, then each sentence followed by a pause."""
    silence = bytes(2 * round(rate * pause))
    pcm = silence
    for number, sentence in enumerate(sentences):
        wav = media.speak(sentence, folder / f"sentence-{number}.wav")
        raw = folder / f"sentence-{number}-{rate}.raw"
        media.ffmpeg("-i", str(wav), "-ar", str(rate), "-ac", "1", "-f", "s16le", str(raw))
        pcm += raw.read_bytes() + silence
    return pcm


def append(pcm: bytes) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


def transcription_session(
    rate: int = 24000, vad: bool = True, model: str = "whisper-1", language: str = "en"
) -> dict[str, Any]:
    turn_detection = {"type": "server_vad", "silence_duration_ms": 500} if vad else None
    return {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": rate},
                    "transcription": {"model": model, "language": language},
                    "turn_detection": turn_detection,
                }
            },
        },
    }


class LiveClient:
    """One session: send events, and read the server's events in the order they came."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.events: list[dict[str, Any]] = []
        self.arrived_at: list[float] = []

    async def start(self, session: dict[str, Any] | None = None, within: float = 60) -> str:
        """Set the session up once it is created (by default as `transcription_session()`
        makes it); its job id."""
        job_id: str = (await self.next("session.created", within))["session"]["id"]
        await self.send(transcription_session() if session is None else session)
        await self.next("session.updated", within)
        return job_id

    async def send(self, event: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(event))

    async def next(self, kind: str, within: float = 60) -> dict[str, Any]:
        """The next event of `kind` (others that come first are kept in `events`)."""
        async with asyncio.timeout(within):
            while True:
                event = await self.receive()
                if event["type"] == kind:
                    return event

    async def receive(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(await self.connection.recv())
        self.events.append(event)
        self.arrived_at.append(time.monotonic())
        return event

    async def stream(self, pcm: bytes, rate: int = 24000, pace: float = 0.0) -> None:
        """Append `pcm` in chunks of CHUNK_SECONDS, each after `pace` times its length (0: at
        once; 1: real time)."""
        step = round(rate * CHUNK_SECONDS) * 2
        started = time.monotonic()
        for number, offset in enumerate(range(0, len(pcm), step)):
            await self.send(append(pcm[offset : offset + step]))
            wait = started + (number + 1) * CHUNK_SECONDS * pace - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == kind]


def realtime_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/v1/realtime"


def open_session(base_url: str, key: str | None = None, **options: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return connect(realtime_url(base_url), additional_headers=headers, **options)
