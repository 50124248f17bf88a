"""Mixed load: one long recording's pieces against a steady stream of short clips, with and
without the age at which pieces go before new whole recordings (STT_OLDEST_FIRST_AFTER_SECONDS).

    python -m bench.mixed                                  # the figures of docs/performance.md
    python -m bench.mixed --clips-per-second 3.6 --ages 2 5 10 none

It measures the recognizers' order of work, not the engines: the real broker, topology and
puller (`shared.broker.Pull`, as a recognizer with two slots uses it), with each slot's
recognition replaced by a wait as long as the engine would take (a piece of a minute 1.5 s, a
clip 0.5 s: faster-whisper tiny.en on these machines, at a tenth of the time). The clips keep
the slots 80 % busy by default, for a minute. For each age it reports when the long recording
was done and how long the clips of that minute waited for a slot. Writes `bench/results/mixed.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
import uuid
from typing import Any

from bench.run import RESULTS, machine
from scripts.stack import delete_namespace
from shared.broker import Broker, Pull, Subscription
from shared.events import AudioReady
from shared.settings import CommonSettings

ENGINE = "faster-whisper"
SLOTS = 2
LONG_ID = "f" * 32


class Recognizers:
    """Two slots that "recognize" by waiting, and remember when each job waited and ended."""

    def __init__(self, piece_work: float, clip_work: float) -> None:
        self.piece_work = piece_work
        self.clip_work = clip_work
        self.published: dict[str, float] = {}
        self.clip_waits: list[float] = []
        self.pieces_left = 0
        self.long_done = asyncio.Event()
        self.clips_done = asyncio.Event()

    async def __call__(self, event: AudioReady) -> None:
        started = time.monotonic()
        if event.is_piece:
            await asyncio.sleep(self.piece_work)
            self.pieces_left -= 1
            if self.pieces_left == 0:
                self.long_done.set()
            return
        self.clip_waits.append(started - self.published.pop(event.job_id))
        await asyncio.sleep(self.clip_work)
        if not self.published:
            self.clips_done.set()


async def one_run(args: argparse.Namespace, age: float | None) -> dict[str, Any]:
    settings = CommonSettings(namespace=f"bench-mixed-{uuid.uuid4().hex[:8]}")
    broker = await Broker(settings).connect()
    slots = Recognizers(args.piece_work, args.clip_work)
    queues = (broker.topology.recognizers[ENGINE], broker.topology.pieces[ENGINE])
    subscriptions = tuple(Subscription(queue, AudioReady, slots) for queue in queues)
    try:
        await broker.pull(Pull(subscriptions, lambda: SLOTS, age))
        started = time.monotonic()
        slots.pieces_left = args.pieces
        for index in range(args.pieces):
            await broker.publish(
                AudioReady(
                    job_id=LONG_ID, engine=ENGINE, duration_seconds=60.0 * args.pieces,
                    piece_index=index, piece_count=args.pieces, offset_seconds=60.0 * index,
                    piece_seconds=60.0,
                )
            )  # fmt: skip
        stream = asyncio.create_task(
            clips(broker, slots, args.clips_per_second, args.stream_seconds)
        )
        long_seconds: float | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.give_up_seconds):
                await slots.long_done.wait()
                long_seconds = time.monotonic() - started
                await stream
                await slots.clips_done.wait()
        stream.cancel()
        await broker.stop_consuming(args.clip_work * 2)
    finally:
        await broker.close()
        await delete_namespace(settings)
    waits = sorted(slots.clip_waits)
    return {
        "oldest_first_after_seconds": age,
        "long_recording_done_seconds": None if long_seconds is None else round(long_seconds, 1),
        "clips_recognized": len(waits),
        "clip_wait_median_seconds": round(statistics.median(waits), 2),
        "clip_wait_p95_seconds": round(waits[int(len(waits) * 0.95)], 2),
        "clip_wait_max_seconds": round(waits[-1], 2),
    }


async def clips(broker: Broker, slots: Recognizers, per_second: float, seconds: float) -> None:
    """Publish clips for `seconds`; the last ones are recognized after it."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        job_id = uuid.uuid4().hex
        slots.published[job_id] = time.monotonic()
        await broker.publish(AudioReady(job_id=job_id, engine=ENGINE, duration_seconds=20.0))
        await asyncio.sleep(1 / per_second)


async def every_run(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = []
    for age in args.ages:
        run = await one_run(args, None if age == "none" else float(age))
        print(json.dumps(run), flush=True)
        runs.append(run)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pieces", type=int, default=20, help="Pieces of the long recording.")
    parser.add_argument("--piece-work", type=float, default=1.5, help="Seconds a piece takes.")
    parser.add_argument("--clip-work", type=float, default=0.5, help="Seconds a clip takes.")
    parser.add_argument("--clips-per-second", type=float, default=3.2)
    parser.add_argument(
        "--ages", nargs="+", default=["5", "none"], help="Ages to compare; `none`: never."
    )
    parser.add_argument(
        "--stream-seconds", type=float, default=60, help="How long clips keep arriving."
    )
    parser.add_argument("--give-up-seconds", type=float, default=150)
    args = parser.parse_args()
    runs = asyncio.run(every_run(args))
    settings = {key: value for key, value in vars(args).items() if key != "ages"}
    RESULTS.mkdir(exist_ok=True)
    result = {"machine": machine(), "settings": settings, "runs": runs}
    (RESULTS / "mixed.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
