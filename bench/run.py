"""Benchmark: N concurrent uploads through the pipeline and through baseline designs: two that
transcribe inside the request, the tutorial's first (`bench/naive_app.py`) and
whisper-asr-webservice's, one model behind a lock (`bench/locked_app.py`); and one that queues,
the tutorial's later rq design (`bench/rq_app.py`: rq jobs on Redis, polled by the client).

    python -m bench.run --jobs 20 --workers 2 --skip-memory --name headline   # the headline:
                                             # Whisper base (the default) and tiny.en, 3 designs
    python -m bench.run --jobs 20 --engines sphinx --workers 2 --skip-memory
    python -m bench.run --designs rq pipeline --engines sphinx --jobs 10 --workers 2 \
        --skip-memory --name rq-sphinx          # issue 34: rq against the pipeline, both polled

It makes a ~15 s speech clip (espeak-ng, mp4), measures one job's CPU cost alone, starts each
system itself on a namespace and database of its own, fires the uploads the way a user would,
polls, prints a table, writes `bench/results/<name>.json` and a plot of completion times, and
stops everything it started. The two queued designs (rq, pipeline) are polled alike, every
`--poll-seconds`, and each job's completion is read from the server's own record of it. The rq
design is not run unless named in `--designs`: it needs Redis (`--redis-url`, a database that
must be empty, since it is flushed afterwards). Run it on an idle machine: other load skews every
figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from redis import Redis
from rq import Worker

from bench.engines import BENCH_ENGINES, load_bench_engine
from recognizer.engines import read_audio
from scripts.stack import ROOT, Stack, delete_namespace, free_port, until_consuming
from shared.jobs.options import JobOptions
from shared.settings import CommonSettings
from transcoder.convert import to_wav, wav_duration

RESULTS = ROOT / "bench" / "results"
SPEECH = (
    "Please send the quarterly report to the finance team before Friday. "
    "The weather today is sunny and warm, with a light breeze from the west. "
    "Our new office opens next month near the central railway station. "
    "Remember to water the plants and feed the cat while I am away."
)
POLL_SECONDS = 1.0
REDIS_URL = "redis://127.0.0.1:6379/15"


@dataclass
class JobCost:
    """One job measured alone, in this process: what the hardware must spend on it."""

    conversion_cpu: float
    conversion_wall: float
    engine_cpu: float
    engine_wall: float

    @property
    def cpu(self) -> float:
        return self.conversion_cpu + self.engine_cpu

    @property
    def wall(self) -> float:
        return self.conversion_wall + self.engine_wall


@dataclass
class Run:
    design: str
    engine: str
    workers: int
    jobs: int
    accept_ms: list[float] = field(default_factory=list)
    completion_s: list[float] = field(default_factory=list)
    makespan_s: float = 0.0
    ideal_s: float = 0.0
    audio_s_per_wall_s: float = 0.0
    failed: int = 0

    @property
    def efficiency(self) -> float:
        return self.ideal_s / self.makespan_s if self.makespan_s else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "engine": self.engine,
            "workers": self.workers,
            "jobs": self.jobs,
            "failed": self.failed,
            "accept_ms_p50": percentile(self.accept_ms, 50),
            "accept_ms_p99": percentile(self.accept_ms, 99),
            "completion_s_p50": percentile(self.completion_s, 50),
            "completion_s_p95": percentile(self.completion_s, 95),
            "completion_s_max": max(self.completion_s, default=0.0),
            "makespan_s": self.makespan_s,
            "ideal_s": self.ideal_s,
            "efficiency": self.efficiency,
            "audio_s_per_wall_s": self.audio_s_per_wall_s,
        }


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# --- the clip and its cost ---------------------------------------------------------------------


def make_clip(folder: Path) -> tuple[Path, float]:
    wav = folder / "speech.wav"
    mp4 = folder / "speech.mp4"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SPEECH], check=True)
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "color=c=black:s=320x240:r=10", "-i", str(wav), "-shortest",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(mp4),
        ],
        check=True,
    )  # fmt: skip
    return mp4, wav_duration(wav)


def measure_job_cost(clip: Path, engine_name: str, folder: Path, repeats: int = 5) -> JobCost:
    """CPU and wall time of conversion (ffmpeg, a child process) and recognition, each measured
    alone after a warm-up; the median of `repeats`, since a VM's timings wander."""
    wav = folder / "alone.wav"
    engine = load_bench_engine(engine_name)
    to_wav(clip, wav, 60, 3600)
    engine.transcribe(read_audio(wav), JobOptions(engine=engine_name, language="en"))
    samples: list[tuple[float, float, float, float]] = []
    for _ in range(repeats):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        to_wav(clip, wav, 60, 3600)
        conversion_wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        conversion_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        cpu, started = time.process_time(), time.perf_counter()
        engine.transcribe(read_audio(wav), JobOptions(engine=engine_name, language="en"))
        engine_wall = time.perf_counter() - started
        samples.append((conversion_cpu, conversion_wall, time.process_time() - cpu, engine_wall))
    return JobCost(*(statistics.median(column) for column in zip(*samples, strict=True)))


# --- the systems under test --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pipeline(
    root: Path,
    engine: str,
    recognizers: int,
    slots: int,
    threads: int,
    transcoders: int,
    env: dict[str, str] | None = None,
    media_store: str = "folder",
) -> AsyncIterator[tuple[str, Stack, CommonSettings]]:
    """The four services (with `recognizers` recognizer processes) on a fresh namespace; with
    the `gridfs` media store each worker has a scratch folder of its own, as on other hosts."""
    mongo = Stack({})
    mongodb_url = mongo.start_mongodb_standin(root / "mongodb", free_port())
    port = free_port()
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    settings = CommonSettings(
        broker_url="amqp://guest:guest@127.0.0.1:5672/",
        mongodb_url=mongodb_url,
        namespace=namespace,
        media_dir=root / "media",
        engines=(engine,),
        default_engine=engine,
    )
    environment = {
        "STT_MONGODB_URL": mongodb_url,
        "STT_NAMESPACE": namespace,
        "STT_MEDIA_DIR": str(root / "media"),
        "STT_ENGINES": engine,
        "STT_DEFAULT_ENGINE": engine,
        "STT_PORT": str(port),
        "STT_RECOGNIZER_SLOTS": str(slots),
        "STT_RECOGNIZER_CPU_THREADS": str(threads),
        "STT_LOG_LEVEL": "WARNING",
        "STT_MAX_UPLOAD_BYTES": str(2 * 1024**3),
        "STT_MEDIA_STORE": media_store,
        **(env or {}),
    }
    stack = Stack(environment, log_dir=root / "logs")
    workers = [*["transcoder"] * transcoders, *["recognizer"] * recognizers]
    try:
        for service in ("gateway", "janitor"):
            stack.start(service)
        for number, service in enumerate(workers):
            own = (
                {"STT_MEDIA_DIR": str(root / f"scratch-{number}")}
                if media_store == "gridfs"
                else {}
            )
            stack.start(service, **own)
        base_url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(stack.wait_ready, base_url, 120)
        pids = [process.pid for process in stack.running("recognizer")]
        await until_consuming(settings, ("recognizer",), pids)
        yield base_url, stack, settings
    finally:
        stack.stop()
        mongo.stop()
        await delete_namespace(settings)


def serve(stack: Stack, app: str, workers: int = 1) -> str:
    """Serve `bench/{app}.py` in `workers` uvicorn processes of `stack`; its URL once it answers."""
    port = free_port()
    stack._spawn(
        app,
        [
            sys.executable, "-m", "uvicorn", f"bench.{app}:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--log-level", "warning",
        ],
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        stack.raise_if_exited()
        try:
            httpx.get(f"{base_url}/openapi.json", timeout=2)
            return base_url
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def naive(root: Path, engine: str, workers: int, app: str = "naive_app") -> Iterator[str]:
    """A design that does the work inside the request (`bench/naive_app.py`, the tutorial's, or
    `bench/locked_app.py`, whisper-asr-webservice's) in `workers` uvicorn processes."""
    stack = Stack({"BENCH_ENGINE": engine}, log_dir=root / "logs")
    try:
        yield serve(stack, app, workers)
    finally:
        stack.stop()


@contextlib.contextmanager
def rq_design(root: Path, engine: str, workers: int, redis_url: str) -> Iterator[str]:
    """The tutorial's rq design (`bench/rq_app.py`): one app process and `workers` rq workers,
    each with its engine loaded, on the Redis database of `redis_url`. That database must be
    empty at the start, so that flushing it afterwards removes this run's keys and no one
    else's."""
    redis = Redis.from_url(redis_url)
    keys = redis.dbsize()
    if keys:
        redis.close()
        raise RuntimeError(
            f"{redis_url} holds {keys} keys; the rq design flushes its database when it is done,"
            " so give it an empty one (--redis-url)"
        )
    environment = {
        "BENCH_ENGINE": engine,
        "BENCH_REDIS_URL": redis_url,
        "BENCH_RQ_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
        "BENCH_RQ_FOLDER": str(root / "uploads"),
    }
    stack = Stack(environment, log_dir=root / "logs")
    try:
        for number in range(workers):
            stack._spawn(f"rq-worker-{number}", [sys.executable, "-m", "bench.rq_app"])
        base_url = serve(stack, "rq_app")
        # A worker registers once its engine is loaded (`bench.rq_app.work`).
        deadline = time.monotonic() + 120
        while Worker.count(connection=redis) < workers:
            stack.raise_if_exited()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workers} rq workers not ready after 120 s")
            time.sleep(0.2)
        yield base_url
    finally:
        stack.stop()
        redis.flushdb()
        redis.close()


# The designs that do the work inside the request, each with the app that rebuilds it.
IN_REQUEST_DESIGNS = {"naive": "naive_app", "locked": "locked_app"}
DESIGNS = (*IN_REQUEST_DESIGNS, "rq", "pipeline")


# --- the client --------------------------------------------------------------------------------


def pipeline_finish(job: dict[str, Any]) -> tuple[float, bool] | None:
    """When a pipeline job finished and whether it is done; None while it is not finished."""
    if job["status"] not in ("done", "failed"):
        return None
    moment = datetime.fromisoformat(job["stage_times"][job["status"]])
    return moment.timestamp(), job["status"] == "done"


def rq_finish(job: dict[str, Any]) -> tuple[float, bool] | None:
    """The same for a job of `bench/rq_app.py`, which adds rq's `ended_at` as `finished_at`."""
    if "finished_at" not in job:
        return None
    return datetime.fromisoformat(job["finished_at"]).timestamp(), "text" in job


@dataclass(frozen=True)
class Polled:
    """A design that answers an upload with a job id, then is polled for the job."""

    submit: str  # the route that takes the upload, as the form field `file`
    status: str  # the route of one job, with `{job_id}`
    finish: Callable[[dict[str, Any]], tuple[float, bool] | None]


POLLED_DESIGNS = {
    "pipeline": Polled("/v1/jobs", "/v1/jobs/{job_id}", pipeline_finish),
    "rq": Polled("/stt/task", "/stt/task/{job_id}", rq_finish),
}


async def finished_at(
    client: httpx.AsyncClient,
    job_id: str,
    poll_seconds: float = POLL_SECONDS,
    design: Polled = POLLED_DESIGNS["pipeline"],
) -> tuple[float, bool]:
    """When the job finished, by the server's clock (the same machine's), and whether it is done.
    The time comes from the job's own record, so polling slowly does not blur it."""
    while True:
        response = await client.get(design.status.format(job_id=job_id))
        response.raise_for_status()
        finish = design.finish(response.json())
        if finish is not None:
            return finish
        await asyncio.sleep(poll_seconds)


async def burst_polled(
    base_url: str,
    clip: Path,
    jobs: int,
    design: Polled = POLLED_DESIGNS["pipeline"],
    poll_seconds: float = POLL_SECONDS,
) -> tuple[list[float], list[float], float, int]:
    """Fire `jobs` uploads at once and poll each job every `poll_seconds`; returns accept
    latencies, completion times, makespan, failures."""
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as client:

        async def one() -> tuple[float, float, float, bool]:
            submitted = time.time()
            started = time.perf_counter()
            with clip.open("rb") as file:
                response = await client.post(design.submit, files={"file": (clip.name, file)})
            accept = time.perf_counter() - started
            response.raise_for_status()
            job_id = response.json()["job_id"]
            done_at, ok = await finished_at(client, job_id, poll_seconds, design)
            return submitted, accept, done_at, ok

        results = await asyncio.gather(*(one() for _ in range(jobs)))
    start = min(submitted for submitted, _, _, _ in results)
    completions = [done_at - submitted for submitted, _, done_at, _ in results]
    makespan = max(done_at for _, _, done_at, _ in results) - start
    return (
        [accept * 1000 for _, accept, _, _ in results],
        completions,
        makespan,
        sum(not ok for *_, ok in results),
    )


# Where each design in the request takes the upload: its route and form field.
IN_REQUEST_ROUTES = {"naive_app": ("/stt/native", "file"), "locked_app": ("/asr", "audio_file")}


async def burst_naive(
    base_url: str, clip: Path, jobs: int, app: str = "naive_app"
) -> tuple[list[float], list[float], float, int]:
    route, field_name = IN_REQUEST_ROUTES[app]
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as client:

        async def one() -> tuple[float, bool]:
            started = time.perf_counter()
            try:
                with clip.open("rb") as file:
                    response = await client.post(route, files={field_name: (clip.name, file)})
            except httpx.TransportError:
                # uvicorn's supervisor restarts a worker whose loop stays blocked too long,
                # dropping its requests: the naive design fails them.
                return time.perf_counter() - started, False
            return time.perf_counter() - started, response.status_code == 200

        started = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(jobs)))
        makespan = time.perf_counter() - started
    completions = [seconds for seconds, _ in results]
    # The naive design accepts nothing until it is done: its "accept" is the whole request.
    return [c * 1000 for c in completions], completions, makespan, sum(not ok for _, ok in results)


async def accept_latency_while_saturated(
    base_url: str, clip: Path, jobs: int, probes: int
) -> list[float]:
    """Keep the workers busy with `jobs` uploads, then time `probes` single uploads, 100 ms apart."""
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as client:
        await asyncio.gather(*(upload(client, clip) for _ in range(jobs)))
        await asyncio.sleep(1)
        latencies = []
        for _ in range(probes):
            started = time.perf_counter()
            await upload(client, clip)
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.1)
    return latencies


async def upload(client: httpx.AsyncClient, clip: Path) -> str:
    with clip.open("rb") as file:
        response = await client.post("/v1/jobs", files={"file": (clip.name, file)})
    response.raise_for_status()
    job_id: str = response.json()["job_id"]
    return job_id


async def single_job_overhead(base_url: str, clip: Path, repeats: int = 5) -> dict[str, float]:
    """One job at a time on an idle system: its end-to-end time and what of it was not the work
    itself (the job records how long ffmpeg and the engine took); medians of `repeats`."""
    samples = []
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as client:
        for _ in range(repeats):
            submitted = time.time()
            job_id = await upload(client, clip)
            done_at, _ = await finished_at(client, job_id, poll_seconds=0.02)
            job = (await client.get(f"/v1/jobs/{job_id}")).json()
            end_to_end = done_at - submitted
            work = job["conversion_seconds"] + job["recognition_seconds"]
            samples.append((end_to_end, work, end_to_end - work))
    end_to_end, work, overhead = (
        statistics.median(column) for column in zip(*samples, strict=True)
    )
    return {"end_to_end_s": end_to_end, "work_s": work, "overhead_s": overhead}


# --- memory ------------------------------------------------------------------------------------


def rss_mb(pid: int, with_children: bool = False) -> float:
    process = psutil.Process(pid)
    processes = [process, *(process.children(recursive=True) if with_children else [])]
    return float(sum(p.memory_info().rss for p in processes)) / 2**20


async def gateway_memory_for_large_upload(
    base_url: str, gateway_pid: int, size_mb: int
) -> tuple[float, float]:
    """Peak resident memory of the gateway before and after one `size_mb` upload (random bytes:
    the transcoder rejects them quickly, so the test does not wait on hours of 'audio')."""

    def peak_mb() -> float:
        for line in Path(f"/proc/{gateway_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    boundary = "bench-boundary"
    block = os.urandom(1024 * 1024)

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        ).encode()
        for _ in range(size_mb):
            yield block
        yield f"\r\n--{boundary}--\r\n".encode()

    before = peak_mb()
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as client:
        response = await client.post(
            "/v1/jobs",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        response.raise_for_status()
    return before, peak_mb()


async def recognizer_memory_over_jobs(
    base_url: str, recognizer_pid: int, clip: Path, jobs: int
) -> list[tuple[int, float]]:
    """Resident memory of the recognizer and its slot processes as `jobs` jobs pass through."""
    samples = [(0, rss_mb(recognizer_pid, with_children=True))]
    done = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as client:
        while done < jobs:
            batch = min(20, jobs - done)
            ids = await asyncio.gather(*(upload(client, clip) for _ in range(batch)))
            await asyncio.gather(*(finished_at(client, job_id) for job_id in ids))
            done += batch
            samples.append((done, rss_mb(recognizer_pid, with_children=True)))
    return samples


# --- the plan ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
        "when": datetime.now().isoformat(timespec="seconds"),
    }


async def main(options: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="stt-bench-"))
    clip, clip_seconds = make_clip(work)
    cores = os.cpu_count() or 1
    rq = POLLED_DESIGNS["rq"]
    report: dict[str, Any] = {
        "machine": machine(),
        "clip_seconds": clip_seconds,
        "media_store": options.media_store,
        "poll_seconds": options.poll_seconds,
        "runs": [],
    }
    runs: list[Run] = []
    for engine in options.engines:
        cost = await asyncio.to_thread(measure_job_cost, clip, engine, work)
        report.setdefault("job_cost", {})[engine] = asdict(cost) | {"cpu": cost.cpu}
        print(f"{engine}: one job alone costs {cost.cpu:.2f} CPU-s "
              f"(conversion {cost.conversion_cpu:.2f}, engine {cost.engine_cpu:.2f}); "
              f"wall {cost.wall:.2f} s; clip {clip_seconds:.1f} s")  # fmt: skip
        ideal = options.jobs * cost.cpu / cores
        for workers in options.workers:
            for design, app in IN_REQUEST_DESIGNS.items():
                if design not in options.designs:
                    continue
                run = Run(design, engine, workers, options.jobs, ideal_s=ideal)
                with naive(work / f"{design}-{engine}-{workers}", engine, workers, app) as base_url:
                    run.accept_ms, run.completion_s, run.makespan_s, run.failed = await burst_naive(
                        base_url, clip, options.jobs, app
                    )
                run.audio_s_per_wall_s = options.jobs * clip_seconds / run.makespan_s
                runs.append(run)
                print_run(run)
            if "rq" in options.designs:
                run = Run("rq", engine, workers, options.jobs, ideal_s=ideal)
                root = work / f"rq-{engine}-{workers}"
                with rq_design(root, engine, workers, options.redis_url) as base_url:
                    await burst_polled(base_url, clip, workers, rq)  # warm-up, as the pipeline's
                    measured = await burst_polled(
                        base_url, clip, options.jobs, rq, options.poll_seconds
                    )
                run.accept_ms, run.completion_s, run.makespan_s, run.failed = measured
                run.audio_s_per_wall_s = options.jobs * clip_seconds / run.makespan_s
                runs.append(run)
                print_run(run)
            if "pipeline" not in options.designs:
                continue
            run = Run("pipeline", engine, workers, options.jobs, ideal_s=ideal)
            root = work / f"pipeline-{engine}-{workers}"
            async with pipeline(
                root, engine, recognizers=workers, slots=1, threads=options.threads,
                transcoders=options.transcoders, media_store=options.media_store,
            ) as (base_url, _stack, _settings):  # fmt: skip
                await burst_polled(base_url, clip, workers)  # warm-up: every slot once
                run.accept_ms, run.completion_s, run.makespan_s, run.failed = await burst_polled(
                    base_url, clip, options.jobs, poll_seconds=options.poll_seconds
                )
                run.audio_s_per_wall_s = options.jobs * clip_seconds / run.makespan_s
                if workers == cores and engine == options.engines[0]:
                    report["accept_ms_while_saturated"] = await accept_latency_while_saturated(
                        base_url, clip, options.jobs, probes=30
                    )
            runs.append(run)
            print_run(run)
        if engine == options.engines[0] and not options.skip_memory:
            await memory_phase(work / f"memory-{engine}", engine, clip, options, report)
    report["runs"] = [run.summary() for run in runs]
    report["completion_s"] = {f"{r.design}-{r.engine}-{r.workers}": r.completion_s for r in runs}
    out = RESULTS / f"{options.name}.json"
    out.write_text(json.dumps(report, indent=2))
    plot(runs, RESULTS / f"{options.name}.png")
    print_table(runs, report)
    print(f"\nwrote {out.relative_to(ROOT)} and {out.with_suffix('.png').relative_to(ROOT)}")


async def memory_phase(
    root: Path,
    engine: str,
    clip: Path,
    options: argparse.Namespace,
    report: dict[str, Any],
) -> None:
    cores = os.cpu_count() or 1
    async with pipeline(
        root, engine, recognizers=1, slots=cores, threads=options.threads, transcoders=options.transcoders
    ) as (base_url, stack, _settings):  # fmt: skip
        report["single_job"] = await single_job_overhead(base_url, clip)
        [gateway] = stack.running("gateway")
        before, after = await gateway_memory_for_large_upload(
            base_url, gateway.pid, options.upload_mb
        )
        report["gateway_peak_rss_mb"] = {
            "before": before,
            "after": after,
            "upload_mb": options.upload_mb,
        }
        [recognizer] = stack.running("recognizer")
        report["recognizer_rss_mb"] = await recognizer_memory_over_jobs(
            base_url, recognizer.pid, clip, options.memory_jobs
        )


def print_run(run: Run) -> None:
    s = run.summary()
    print(
        f"  {run.design:<8} {run.engine:<14} workers={run.workers}: makespan {s['makespan_s']:.1f} s"
        f" (ideal {s['ideal_s']:.1f} s, efficiency {s['efficiency']:.2f}),"
        f" accept p99 {s['accept_ms_p99']:.0f} ms, failed {run.failed}"
    )


def print_table(runs: list[Run], report: dict[str, Any]) -> None:
    header = (
        "| design | engine | workers | makespan s | ideal s | efficiency | audio s / wall s "
        "| accept p50 ms | accept p99 ms | done p50 s | done p95 s | done max s |"
    )
    print("\n" + header)
    print("|---" * 12 + "|")
    for run in runs:
        s = run.summary()
        print(
            f"| {run.design} | {run.engine} | {run.workers} | {s['makespan_s']:.1f} | {s['ideal_s']:.1f}"
            f" | {s['efficiency']:.2f} | {s['audio_s_per_wall_s']:.1f} | {s['accept_ms_p50']:.0f}"
            f" | {s['accept_ms_p99']:.0f} | {s['completion_s_p50']:.1f} | {s['completion_s_p95']:.1f}"
            f" | {s['completion_s_max']:.1f} |"
        )
    if "accept_ms_while_saturated" in report:
        probes = report["accept_ms_while_saturated"]
        print(f"\naccept latency while saturated: p50 {percentile(probes, 50):.0f} ms,"
              f" p99 {percentile(probes, 99):.0f} ms over {len(probes)} uploads")  # fmt: skip
    if "single_job" in report:
        single = report["single_job"]
        print(f"one job alone: {single['end_to_end_s']:.2f} s end to end, of which"
              f" {single['overhead_s'] * 1000:.0f} ms was not conversion or recognition")  # fmt: skip
    if "gateway_peak_rss_mb" in report:
        g = report["gateway_peak_rss_mb"]
        print(f"gateway peak RSS {g['before']:.0f} MB -> {g['after']:.0f} MB"
              f" across a {g['upload_mb']} MB upload (+{g['after'] - g['before']:.1f} MB)")  # fmt: skip
    if "recognizer_rss_mb" in report:
        samples = report["recognizer_rss_mb"]
        first = next(mb for jobs, mb in samples if jobs >= 20)
        last = samples[-1][1]
        print(f"recognizer RSS (with its slots): {first:.0f} MB after 20 jobs,"
              f" {last:.0f} MB after {samples[-1][0]} ({(last / first - 1) * 100:+.1f}%)")  # fmt: skip


@contextlib.contextmanager
def chart(path: Path, title: str, x_label: str, y_label: str) -> Iterator[Any]:
    """One set of axes to draw on, labelled and saved to `path` as a PNG when the block ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    yield axes
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def plot(runs: list[Run], path: Path) -> None:
    title = f"{runs[0].jobs} concurrent uploads of one clip"
    with chart(path, title, "seconds after the uploads started", "jobs finished") as axes:
        for run in runs:
            times = sorted(run.completion_s)
            style = {"naive": "--", "locked": ":", "rq": "-."}.get(run.design, "-")
            axes.plot(
                times, range(1, len(times) + 1), style, marker=".",
                label=f"{run.design}, {run.engine}, {run.workers} worker(s)",
            )  # fmt: skip


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20, help="concurrent uploads per run")
    parser.add_argument(
        "--engines", nargs="+", default=["whisper-base", "faster-whisper"], choices=BENCH_ENGINES
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4],
                        help="recognizer processes (pipeline), rq workers (rq) and uvicorn"
                             " workers (naive, locked)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="threads per Whisper model")
    parser.add_argument("--transcoders", type=int, default=1)
    parser.add_argument("--media-store", choices=["folder", "gridfs"], default="folder",
                        help="gridfs: each worker with a scratch folder of its own")  # fmt: skip
    parser.add_argument(
        "--designs", nargs="+", default=["naive", "locked", "pipeline"], choices=DESIGNS,
        help="naive: the tutorial's first; locked: whisper-asr-webservice's; rq: the tutorial's"
             " rq design (needs Redis, so only when named); pipeline: this service",
    )  # fmt: skip
    parser.add_argument(
        "--poll-seconds", type=float, default=POLL_SECONDS,
        help="how often each job of a queued design (rq, pipeline) is polled",
    )  # fmt: skip
    parser.add_argument(
        "--redis-url", default=REDIS_URL,
        help="the rq design's Redis database: must be empty, and is flushed afterwards",
    )  # fmt: skip
    parser.add_argument(
        "--skip-naive", action="store_true", help="the pipeline alone (as --designs pipeline)"
    )
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--upload-mb", type=int, default=500)
    parser.add_argument("--memory-jobs", type=int, default=200)
    parser.add_argument("--name", default="latest", help="file name of the results")
    options = parser.parse_args()
    if options.skip_naive:
        options.designs = ["pipeline"]
    return options


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    asyncio.run(main(arguments()))
