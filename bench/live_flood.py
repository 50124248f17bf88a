"""Benchmark: what one hostile live client costs everyone else. The pipeline runs (Sphinx, one
recognizer); a prober checks `/healthz` every 50 ms and uploads a short clip every 500 ms, first
for `--seconds` with no live session, then for as long again while one client floods a session
with silence: appends of `--message-kib` each, sent as fast as the gateway reads them.

    python -m bench.live_flood                       # 15 MiB appends (the largest allowed)
    python -m bench.live_flood --message-kib 64      # many small appends instead

The flooder runs in a process of its own, so its encoding does not delay the prober's clock.
The figures are the latencies of both kinds of request in both phases (p50, p99, max), their
ratio flood/quiet, the gateway's resident memory, and what the flooder was told. Both phases run
in one run, one after the other; on a shared machine, compare the ratio. Writes
`bench/results/live-flood-<message-kib>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench.run import RESULTS, machine, make_clip, percentile, pipeline, upload

HEALTH_EVERY_SECONDS = 0.05
UPLOAD_EVERY_SECONDS = 0.5
RATE = 24000


def summary(latencies: list[float]) -> dict[str, float | int]:
    milliseconds = [1000 * latency for latency in latencies]
    return {
        "count": len(milliseconds),
        "p50_ms": round(percentile(milliseconds, 50), 1),
        "p99_ms": round(percentile(milliseconds, 99), 1),
        "max_ms": round(max(milliseconds), 1),
    }


async def probe(base_url: str, clip: Path, seconds: float) -> dict[str, list[float]]:
    """Latencies of `/healthz` and of uploads, each sent on its own schedule for `seconds`."""
    latencies: dict[str, list[float]] = {"healthz": [], "upload": []}
    deadline = time.monotonic() + seconds

    async def every(interval: float, kind: str, request: Any) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            while (start := time.monotonic()) < deadline:
                await request(client)
                latencies[kind].append(time.monotonic() - start)
                await asyncio.sleep(max(start + interval - time.monotonic(), 0))

    async def health(client: httpx.AsyncClient) -> None:
        (await client.get("/healthz")).raise_for_status()

    async def upload_clip(client: httpx.AsyncClient) -> None:
        await upload(client, clip)

    await asyncio.gather(
        every(HEALTH_EVERY_SECONDS, "healthz", health),
        every(UPLOAD_EVERY_SECONDS, "upload", upload_clip),
    )
    return latencies


async def flood(base_url: str, message_bytes: int, seconds: float) -> dict[str, Any]:
    """One session sent appends of silence as fast as the gateway takes them."""
    # The whole message, JSON around the base64, within `message_bytes`.
    audio = base64.b64encode(bytes((message_bytes - 64) * 3 // 4 // 2 * 2)).decode()
    append = json.dumps({"type": "input_audio_buffer.append", "audio": audio})
    assert len(append) <= message_bytes
    told: dict[str, int] = {}
    sent = 0
    url = base_url.replace("http://", "ws://") + "/v1/realtime"
    async with connect(url, compression=None, max_size=None) as connection:

        async def read() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for message in connection:
                    event = json.loads(message)
                    if event["type"] == "error":
                        code = event["error"]["code"]
                        told[code] = told.get(code, 0) + 1

        reading = asyncio.create_task(read())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.01)):
                    await connection.send(append)
            except TimeoutError:
                break  # the gateway is not reading: back-pressure holds the flood
            except ConnectionClosed as closed:
                told[f"closed {closed.rcvd.code if closed.rcvd else None}"] = 1
                break
            sent += 1
        reading.cancel()
    return {
        "messages_sent": sent,
        "audio_seconds_sent": round(sent * (len(audio) * 3 // 4) / 2 / RATE, 1),
        "errors_told": told,
    }


def flood_process(base_url: str, message_bytes: int, seconds: float, results: Any) -> None:
    results.put(asyncio.run(flood(base_url, message_bytes, seconds)))


async def main(options: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="stt-flood-"))
    clip, _ = make_clip(work)
    message_bytes = options.message_kib * 1024
    report: dict[str, Any] = {
        "machine": machine(),
        "load_average_at_start": os.getloadavg(),
        "message_kib": options.message_kib,
        "seconds_per_phase": options.seconds,
    }
    async with pipeline(work, "sphinx", 1, 2, 1, 1) as (base_url, stack, _settings):
        [process] = stack.running("gateway")
        gateway = psutil.Process(process.pid)
        await probe(base_url, clip, 3)  # warm up: the first uploads load what they need
        report["gateway_rss_mb_before"] = round(gateway.memory_info().rss / 2**20, 1)
        quiet = await probe(base_url, clip, options.seconds)
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        flooder = context.Process(
            target=flood_process,
            args=(base_url, message_bytes, options.seconds + 5, results),
        )
        flooder.start()
        await asyncio.sleep(3)  # the session is open and its first appends are in
        flooded = await probe(base_url, clip, options.seconds)
        report["gateway_rss_mb_during"] = round(gateway.memory_info().rss / 2**20, 1)
        report["flooder"] = await asyncio.to_thread(results.get, True, 60)
        await asyncio.to_thread(flooder.join, 30)
    for kind in ("healthz", "upload"):
        report[kind] = {"quiet": summary(quiet[kind]), "flood": summary(flooded[kind])}
        report[kind]["p99_ratio"] = round(
            report[kind]["flood"]["p99_ms"] / report[kind]["quiet"]["p99_ms"], 2
        )
    report["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = options.name or f"live-flood-{options.message_kib}.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="how long each phase lasts")
    parser.add_argument(
        "--message-kib", type=int, default=15 * 1024, help="each append's size (15 MiB: the limit)"
    )
    parser.add_argument("--name", default="", help="the results file in bench/results")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(arguments()))
