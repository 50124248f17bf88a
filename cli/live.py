"""`stt live FILE|-`: stream a recording (or standard input) to a live session at real-time
pace, and print each utterance's text as it comes back. On a terminal, the words of the
utterance under way show on the current line as they are heard, and its final text replaces
them; piped, only the final lines are written.

ffmpeg turns whatever is given into 24 kHz mono PCM16 as it reads, so a file of any kind, or a
stream piped in (`arecord -f S16_LE | stt live -`), works alike.
"""

import asyncio
import base64
import contextlib
import json
import shutil
import sys
import time
from typing import Any

from rich.console import Console
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

RATE = 24000
CHUNK_SECONDS = 0.1
# Silence appended at the end, so the server hears the last utterance end.
TAIL_SECONDS = 1.0
RESULT_WAIT_SECONDS = 120
# Back to the start of the line, and erase it.
CLEAR_LINE = "\r\x1b[K"


class LiveFailed(Exception):
    """The session could not be held; the message says why."""


def realtime_url(base_url: str) -> str:
    scheme, _, rest = base_url.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}/v1/realtime"


async def live(
    base_url: str,
    api_key: str | None,
    source: str,
    language: str | None,
    model: str | None,
    speed: float,
    errors: Console,
) -> int:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with connect(realtime_url(base_url), additional_headers=headers) as connection:
            return await _session(connection, source, language, model, speed, errors)
    except InvalidStatus as refused:
        raise LiveFailed(f"the service refused the session ({refused})") from refused
    except (OSError, ConnectionClosed) as error:
        raise LiveFailed(f"lost the service at {base_url} ({error})") from error


async def _session(
    connection: ClientConnection,
    source: str,
    language: str | None,
    model: str | None,
    speed: float,
    errors: Console,
) -> int:
    transcription = {"model": model or "whisper-1", **({"language": language} if language else {})}
    session = {
        "type": "transcription",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": RATE},
                "transcription": transcription,
                "turn_detection": {"type": "server_vad"},
            }
        },
    }
    await connection.send(json.dumps({"type": "session.update", "session": session}))
    state = _State()
    reading = asyncio.create_task(_read_events(connection, state, errors))
    try:
        await _stream(connection, source, speed)
        if state.speaking:
            state.committing = True
            await connection.send(json.dumps({"type": "input_audio_buffer.commit"}))
        async with asyncio.timeout(RESULT_WAIT_SECONDS):
            await state.settled(reading)
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await reading
    if state.job_id:
        errors.print(f"job {state.job_id}: {state.told} utterance(s)")
    return 1 if state.failed or state.refused else 0


class _State:
    def __init__(self) -> None:
        self.job_id = ""
        self.speaking = False
        self.committed: set[str] = set()
        self.committing = False  # the last words were committed; the server has not said so yet
        self.told = 0
        self.failed = 0
        self.refused = ""
        self.changed = asyncio.Event()
        self.heard: dict[str, str] = {}  # the interim text of utterances under way
        self.interim = sys.stdout.isatty()

    async def settled(self, reading: "asyncio.Task[None]") -> None:
        """Until every committed utterance has its text (or the server ended the session)."""
        while (self.committed or self.committing) and not reading.done():
            self.changed.clear()
            await self.changed.wait()


async def _read_events(connection: ClientConnection, state: _State, errors: Console) -> None:
    async for message in connection:
        event: dict[str, Any] = json.loads(message)
        kind = event.get("type")
        item = event.get("item_id", "")
        if kind == "session.created":
            state.job_id = event["session"]["id"]
        elif kind == "input_audio_buffer.speech_started":
            state.speaking = True
        elif kind == "input_audio_buffer.speech_stopped":
            state.speaking = False
        elif kind == "input_audio_buffer.committed":
            state.speaking = state.committing = False
            state.committed.add(item)
        elif kind == "conversation.item.input_audio_transcription.delta":
            state.heard[item] = state.heard.get(item, "") + event["delta"]
            if state.interim:
                _show_interim(state.heard[item])
        elif kind == "conversation.item.input_audio_transcription.completed":
            state.committed.discard(item)
            state.heard.pop(item, None)
            state.told += 1
            if state.interim:
                sys.stdout.write(CLEAR_LINE)
            if event["transcript"]:
                sys.stdout.write(event["transcript"] + "\n")
            sys.stdout.flush()
        elif kind == "conversation.item.input_audio_transcription.failed":
            state.committed.discard(item)
            state.failed += 1
            errors.print(f"stt: an utterance failed: {event['error'].get('message')}")
        elif kind == "error":
            error = event["error"]
            errors.print(f"stt: {error.get('message')}")
            if error.get("code") == "session_limit_reached":
                state.refused = error["message"]
            if error.get("code") == "input_audio_buffer_commit_empty":
                state.committing = False
        state.changed.set()


def _show_interim(text: str) -> None:
    """`text` on the current line, its end if the terminal is too narrow for all of it."""
    width = shutil.get_terminal_size().columns - 1
    sys.stdout.write(CLEAR_LINE + (text if len(text) <= width else "…" + text[-width + 1 :]))
    sys.stdout.flush()


async def _stream(connection: ClientConnection, source: str, speed: float) -> None:
    """Append the source's audio as ffmpeg decodes it, CHUNK_SECONDS at a time, paced."""
    from_stdin = source == "-"
    decoder = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error",
        *(["-i", "pipe:0"] if from_stdin else ["-nostdin", "-i", source]),
        "-f", "s16le", "-ac", "1", "-ar", str(RATE), "pipe:1",
        stdin=None if from_stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert decoder.stdout is not None
    chunk_bytes = round(RATE * CHUNK_SECONDS) * 2
    started = time.monotonic()
    sent = 0.0
    try:
        while True:
            try:
                chunk = await decoder.stdout.readexactly(chunk_bytes)
            except asyncio.IncompleteReadError as end:
                chunk = end.partial
            if not chunk:
                break
            await _append(connection, chunk)
            sent += len(chunk) / 2 / RATE
            ahead = started + sent / speed - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        if decoder.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                decoder.kill()
        await decoder.wait()
    if decoder.returncode not in (0, -9) and sent == 0:
        raise LiveFailed(f"ffmpeg could not read {source!r}")
    await _append(connection, bytes(round(RATE * TAIL_SECONDS) * 2))


async def _append(connection: ClientConnection, pcm: bytes) -> None:
    audio = base64.b64encode(pcm).decode()
    await connection.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
