"""Benchmark: what one status poll (`GET /v1/jobs/{job_id}`) of a finished job costs, in CPU,
in the gateway and in the database, measured in one run.

    python -m bench.poll                   # 200 polls of each kind
    python -m bench.poll --polls 500 --profile

It starts the pipeline (one recognizer, tiny.en) on the embedded MongoDB stand-in, transcribes
the benchmark's speech clip, copies its finished job `--history` times (a deployment keeps
finished jobs for STT_RETENTION_DAYS), then polls the job one request at a time, in series
taken in turn: with the TTL index on `jobs` that earlier versions made (the stand-in purges the
collection on every read of it), and without (the janitor deletes retired jobs). It reads the
CPU time of the gateway and stand-in processes before and after each series, and with
`--profile` samples both with py-spy (`pip install py-spy`) and prints where they spent it.
Results go to `bench/results/poll-<date>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from pymongo import AsyncMongoClient

from bench.run import RESULTS, machine, make_clip, pipeline, upload


@dataclass
class PollCost:
    kind: str
    polls: int
    wall_ms_per_poll: float
    gateway_cpu_ms_per_poll: float
    database_cpu_ms_per_poll: float
    statuses: dict[int, int]

    @property
    def cpu_ms_per_poll(self) -> float:
        return self.gateway_cpu_ms_per_poll + self.database_cpu_ms_per_poll


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def poll_series(
    client: httpx.AsyncClient,
    path: str,
    polls: int,
    headers: dict[str, str],
    gateway: psutil.Process,
    database: psutil.Process,
    kind: str,
) -> PollCost:
    await asyncio.sleep(0.5)  # let what came before settle
    statuses: collections.Counter[int] = collections.Counter()
    before = (cpu_seconds(gateway), cpu_seconds(database))
    started = time.perf_counter()
    for _ in range(polls):
        response = await client.get(path, headers=headers)
        statuses[response.status_code] += 1
    wall = time.perf_counter() - started
    after = (cpu_seconds(gateway), cpu_seconds(database))
    return PollCost(
        kind=kind,
        polls=polls,
        wall_ms_per_poll=1000 * wall / polls,
        gateway_cpu_ms_per_poll=1000 * (after[0] - before[0]) / polls,
        database_cpu_ms_per_poll=1000 * (after[1] - before[1]) / polls,
        statuses=dict(statuses),
    )


def standin_of(root: Path) -> psutil.Process:
    for process in psutil.process_iter(["cmdline"]):
        if str(root / "mongodb") in " ".join(process.info["cmdline"] or []):
            return process
    raise RuntimeError("the MongoDB stand-in of this run is not running")


def profile(pid: int, seconds: float, output: Path) -> list[tuple[str, float]]:
    """py-spy's samples of `pid` for `seconds`: the functions seen most, with their share."""
    beside = Path(sys.executable).with_name("py-spy")
    py_spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if py_spy is None:
        return []
    subprocess.run(
        [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
         "--format", "raw", "--nonblocking", "--output", str(output)],
        check=True, capture_output=True,
    )  # fmt: skip
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in output.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for frame in set(stack.split(";")):
            inclusive[frame] += int(count)
    return [(frame, count / total) for frame, count in inclusive.most_common(40)] if total else []


async def profiled_series(
    client: httpx.AsyncClient, path: str, pids: dict[str, int], seconds: float, folder: Path
) -> dict[str, list[tuple[str, float]]]:
    stop = asyncio.Event()

    async def keep_polling() -> None:
        while not stop.is_set():
            await client.get(path)

    poller = asyncio.create_task(keep_polling())
    try:
        profiles = await asyncio.gather(
            *(
                asyncio.to_thread(profile, pid, seconds, folder / f"{name}.txt")
                for name, pid in pids.items()
            )
        )
    finally:
        stop.set()
        await poller
    return dict(zip(pids, profiles, strict=True))


async def job_ttl_index(settings: Any, *, present: bool) -> None:
    """Put back, or take away, the TTL index on `jobs.finished_at` that versions before the
    janitor's retention sweep made, so that both are measured in one run on one store."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(str(settings.mongodb_url))
    try:
        jobs = client[settings.mongodb_database]["jobs"]
        async for index in await jobs.list_indexes():
            if dict(index["key"]) == {"finished_at": 1}:
                await jobs.drop_index(index["name"])
        if present:
            await jobs.create_index([("finished_at", 1)], expireAfterSeconds=30 * 24 * 3600)
        else:
            await jobs.create_index([("finished_at", 1)])
    finally:
        await client.close()


async def add_history(settings: Any, job_id: str, count: int) -> None:
    """`count` more finished jobs like `job_id` in the store, as a deployment keeps them for
    STT_RETENTION_DAYS: the poll reads one job among many."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(str(settings.mongodb_url))
    try:
        jobs = client[settings.mongodb_database]["jobs"]
        original = await jobs.find_one({"_id": job_id})
        assert original is not None
        for start in range(0, count, 100):
            await jobs.insert_many(
                [
                    {**original, "_id": f"{number:032x}", "job_id": f"{number:032x}"}
                    for number in range(start + 1, min(start + 100, count) + 1)
                ]
            )
    finally:
        await client.close()


async def main(options: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="stt-bench-poll-") as temporary:
        root = Path(temporary)
        clip, _ = await asyncio.to_thread(make_clip, root)
        async with pipeline(root, "faster-whisper", 1, 1, 1, 1) as (base_url, stack, settings):
            gateway = psutil.Process(stack.running("gateway")[0].pid)
            database = standin_of(root)
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
                job_id = await upload(client, clip)
                path = f"/v1/jobs/{job_id}"
                deadline = time.monotonic() + 300
                while (await client.get(path)).json()["status"] not in ("done", "failed"):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the job did not finish")
                    await asyncio.sleep(0.2)
                await add_history(settings, job_id, options.history)
                first = await client.get(path)
                series = []
                for _ in range(options.rounds):
                    for ttl in (True, False):
                        await job_ttl_index(settings, present=ttl)
                        kind = "TTL index on jobs (before)" if ttl else "janitor sweep (now)"
                        series.append(
                            await poll_series(
                                client,
                                path,
                                options.polls,
                                {},
                                gateway,
                                database,
                                kind,
                            )
                        )
                profiles = (
                    await profiled_series(
                        client, path, {"gateway": gateway.pid, "database": database.pid}, 8, root
                    )
                    if options.profile
                    else {}
                )
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": list(psutil.getloadavg()),
        "document_bytes": len(first.content),
        "jobs_in_store": options.history + 1,
        "series": [{**asdict(cost), "cpu_ms_per_poll": cost.cpu_ms_per_poll} for cost in series],
        "profiles": profiles,
    }
    for cost in series:
        print(
            f"{cost.kind:14} {cost.polls} polls: {cost.wall_ms_per_poll:.2f} ms wall,"
            f" CPU {cost.cpu_ms_per_poll:.2f} ms (gateway {cost.gateway_cpu_ms_per_poll:.2f},"
            f" database {cost.database_cpu_ms_per_poll:.2f}),"
            f" {cost.statuses}"
        )
    for name, frames in profiles.items():
        print(f"\n{name}: where the samples were (inclusive)")
        for frame, share in frames[:25]:
            print(f"  {100 * share:5.1f} %  {frame}")
    print(f"load average during the run: {report['load_average']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"poll-{datetime.now(UTC):%Y-%m-%d-%H%M}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out.relative_to(RESULTS.parent.parent)}")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=200, help="polls in each series")
    parser.add_argument("--rounds", type=int, default=2, help="series of each kind, taken in turn")
    parser.add_argument("--profile", action="store_true", help="sample both with py-spy")
    parser.add_argument(
        "--history", type=int, default=1000, help="finished jobs added to the store beside it"
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(arguments()))
