"""Long recordings: one recording of over 30 minutes cut into pieces across the slots, against
the same recording decoded whole in one slot, in one run on one machine.

    python -m bench.long                       # the figures of docs/performance.md
    python -m bench.long --piece-seconds 30 60 120 --skip-memory
    python -m bench.long --three-hours-only --name long-memory

It speaks the GPL-3 text (Debian ships it in /usr/share/common-licenses; about 37 minutes with
espeak-ng) to MP3 and starts the system itself for each layout. It measures the latency from
upload to `done`, when the first partial segments arrive on the event stream, the word error
rate against the spoken text, a 10 s clip submitted while the long one is recognized (5 tries),
the throughput of 20 short clips on the same system, and, with a three-hour video, when its
first words come against when its conversion ends. The recognizer's memory is sampled every
second while it recognizes the video, and before that while it recognizes sixty one-minute
uploads, so that the video's peak can be set against that of ordinary work. Writes
`bench/results/long.json` and `long.png` (`--name` for another name). Run it on an idle machine:
other load skews every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

from bench.decoding import errors, spoken_text, words
from bench.run import RESULTS, burst_polled, chart, finished_at, machine, make_clip, pipeline
from scripts.stack import ROOT

T = TypeVar("T")
Sample = tuple[float, float, float]
"""Seconds since the start, MB of the recognizer's own process, MB of its slots together."""
MINUTE_UPLOADS = 60
"""One-minute uploads recognized before the three-hour video: the memory of ordinary work."""

SHORT_CLIP = (
    "Please send the quarterly report to the finance team before Friday. "
    "Our new office opens next month near the central railway station."
)


def speak(text: str, mp3: Path) -> Path:
    wav = mp3.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), "-q:a", "4", str(mp3)],
        check=True,
    )
    wav.unlink()
    return mp3


def repeated(mp3: Path, times: int, target: Path) -> Path:
    listing = target.with_suffix(".txt")
    listing.write_text("".join(f"file '{mp3}'\n" for _ in range(times)))
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
         "-i", str(listing), "-c", "copy", str(target)],
        check=True,
    )  # fmt: skip
    return target


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of the process and of its children alive now."""
    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


def busy_seconds() -> float:
    """CPU time the whole machine has spent, on all its cores, whoever spent it."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


async def transcribe(base_url: str, media: Path, recognizer_pid: int) -> dict[str, Any]:
    """Upload, follow the event stream to the end; when things happened, the job, and how much
    CPU the recognizer (with its slots) and the whole machine spent meanwhile."""
    cpu_before, busy_before = cpu_seconds(recognizer_pid), busy_seconds()
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as client:
        submitted = time.time()
        with media.open("rb") as file:
            response = await client.post("/v1/jobs", files={"file": (media.name, file)})
        response.raise_for_status()
        accepted = time.time() - submitted
        job_id = response.json()["job_id"]
        first_partial = None
        progress: list[tuple[float, float]] = []
        async with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
            event = ""
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "progress":
                    data = json.loads(line.removeprefix("data: "))
                    moment = time.time() - submitted
                    if first_partial is None and data["segments"]:
                        first_partial = moment
                    progress.append((moment, data["progress"]["audio_seconds_done"]))
        done_at, ok = await finished_at(client, job_id, poll_seconds=0.05)
        job = (await client.get(f"/v1/jobs/{job_id}")).json()
    assert ok, job.get("error")
    wall = time.time() - submitted
    recognizer_cores = (cpu_seconds(recognizer_pid) - cpu_before) / wall
    return {
        "latency_s": done_at - submitted,
        "recognizer_cores": recognizer_cores,
        # Everything else the machine ran meanwhile (the other services, and other work).
        "other_cores": (busy_seconds() - busy_before) / wall - recognizer_cores,
        "accepted_s": accepted,
        "first_partial_s": first_partial,
        "progress": progress,
        "job": job,
    }


async def short_clips_during(
    base_url: str, long_media: Path, clip: Path, tries: int
) -> list[float]:
    """Latencies of a short clip submitted, one after another, while the long one is recognized."""
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as client:
        with long_media.open("rb") as file:
            response = await client.post("/v1/jobs", files={"file": (long_media.name, file)})
        long_id = response.json()["job_id"]
        await until_recognizing(client, long_id)
        await asyncio.sleep(5)
        latencies = []
        for _ in range(tries):
            submitted = time.time()
            with clip.open("rb") as file:
                response = await client.post("/v1/jobs", files={"file": (clip.name, file)})
            done_at, _ = await finished_at(client, response.json()["job_id"], poll_seconds=0.05)
            latencies.append(done_at - submitted)
            still = (await client.get(f"/v1/jobs/{long_id}")).json()["status"]
            assert still == "recognizing", "the long recording finished before the tries did"
            await asyncio.sleep(2)
        await finished_at(client, long_id)
    return latencies


async def until_recognizing(client: httpx.AsyncClient, job_id: str) -> None:
    while True:
        job = (await client.get(f"/v1/jobs/{job_id}")).json()
        if job["status"] == "recognizing":
            return
        await asyncio.sleep(0.2)


def as_video(audio: Path, target: Path) -> Path:
    """`audio` as the sound track of a video (a still black picture, five frames a second)."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "color=c=black:s=320x240:r=5", "-i", str(audio),
         "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264", "-preset", "ultrafast",
         "-tune", "stillimage", "-c:a", "copy", str(target)],
        check=True,
    )  # fmt: skip
    return target


def recognizer_mb(pid: int) -> tuple[float, float]:
    """Resident memory of the recognizer's own process, and of its slot processes together."""
    process = psutil.Process(pid)
    slots = sum(child.memory_info().rss for child in process.children(recursive=True))
    return process.memory_info().rss / 2**20, slots / 2**20


async def sampled_while(
    recognizer_pid: int, work: Awaitable[T], since: float | None = None
) -> tuple[T, list[Sample]]:
    """What `work` returned, and the recognizer's memory (own, slots') every second while it ran,
    timed from `since` (by default, when it started)."""
    task = asyncio.ensure_future(work)
    started = time.time() if since is None else since
    series: list[Sample] = []
    try:
        while True:
            series.append((time.time() - started, *recognizer_mb(recognizer_pid)))
            done, _ = await asyncio.wait({task}, timeout=1)
            if done:
                return task.result(), series
    finally:
        task.cancel()  # if the sampling failed (the recognizer is gone), so does the work


def peak_mb(series: list[Sample]) -> float:
    return max(own + slots for _, own, slots in series)


async def memory_over(
    base_url: str, recognizer_pid: int, recording: Path, work: Path
) -> dict[str, Any]:
    """The recognizer's resident memory (its own and its slots') idle, then every second while
    one-minute uploads of `recording`'s first minute are recognized, then while a three-hour
    video of it is; and when the video's first words came, against the end of its conversion."""
    minute_clip = first_minute(recording, work / "minute.mp3")
    media = three_hour_video(recording, work)
    idle = recognizer_mb(recognizer_pid)
    (_, _, _, failures), minutes = await sampled_while(
        recognizer_pid, burst_polled(base_url, minute_clip, MINUTE_UPLOADS)
    )
    assert failures == 0, f"{failures} one-minute uploads failed"
    first_words: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as client:
        submitted = time.time()
        with media.open("rb") as file:
            response = await client.post("/v1/jobs", files={"file": (media.name, file)})
        response.raise_for_status()
        accepted = time.time() - submitted
        job_id = response.json()["job_id"]

        async def follow() -> None:
            async with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
                event = ""
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: ") and event == "progress" and not first_words:
                        data = json.loads(line.removeprefix("data: "))
                        if data["segments"]:
                            first_words["after_accepted_s"] = time.time() - submitted - accepted
                            # The total is known only once the conversion has ended.
                            first_words["while_converting"] = (
                                data["progress"]["pieces_total"] is None
                            )

        following = asyncio.create_task(follow())
        (finished, done), series = await sampled_while(
            recognizer_pid, finished_at(client, job_id), since=submitted
        )
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        job = (await client.get(f"/v1/jobs/{job_id}")).json()
    assert done, job.get("error")
    return {
        "idle_mb": sum(idle),
        "idle_own_mb": idle[0],
        "idle_slots_mb": idle[1],
        "peak_mb": peak_mb(series),
        "minute_uploads": {"count": MINUTE_UPLOADS, "peak_mb": peak_mb(minutes), "series": minutes},
        "audio_s": job["duration_seconds"],
        "latency_s": finished - submitted,
        "conversion_s": job["conversion_seconds"],
        "first_words": first_words,
        "series": series,
    }


def plot_memory(memory: dict[str, Any], path: Path) -> None:
    title = f"Recognizer memory over a {memory['audio_s'] / 3600:.1f}-hour video"
    with chart(path, title, "minutes after upload", "resident memory (MB)") as axes:
        series = memory["series"]
        moments = [moment / 60 for moment, _, _ in series]
        axes.plot(moments, [own for _, own, _ in series], label="recognizer process")
        axes.plot(moments, [slots for _, _, slots in series], label="its two slots")
        together = [own + slots for _, own, slots in series]
        axes.plot(moments, together, label="together", color="k")
        axes.axhline(memory["idle_mb"], linestyle="--", color="grey", label="together, idle")
        minutes = memory["minute_uploads"]
        axes.axhline(
            minutes["peak_mb"],
            linestyle=":",
            color="grey",
            label=f"together, peak over {minutes['count']} one-minute uploads",
        )


def print_memory(memory: dict[str, Any]) -> None:
    first = memory["first_words"]
    minutes = memory["minute_uploads"]
    print(f"{memory['audio_s'] / 3600:.1f} h video: first words {first['after_accepted_s']:.1f} s"
          f" after it was accepted ({'while' if first['while_converting'] else 'after'} converting,"
          f" which took {memory['conversion_s']:.1f} s); done in {memory['latency_s']:.0f} s;"
          f" recognizer RSS idle {memory['idle_mb']:.0f} MB, peak {memory['peak_mb']:.0f} MB"
          f" ({(memory['peak_mb'] / memory['idle_mb'] - 1) * 100:+.1f}%); over"
          f" {minutes['count']} one-minute uploads before it, peak {minutes['peak_mb']:.0f} MB"
          f" ({(minutes['peak_mb'] / memory['idle_mb'] - 1) * 100:+.1f}%)", flush=True)  # fmt: skip


def first_minute(recording: Path, target: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(recording), "-t", "60",
         "-c", "copy", str(target)],
        check=True,
    )  # fmt: skip
    return target


def three_hour_video(recording: Path, work: Path) -> Path:
    return as_video(repeated(recording, 5, work / "three-hours.mp3"), work / "three-hours.mp4")


def cpu_use(measured: dict[str, Any]) -> str:
    return (
        f"cores: {measured['recognizer_cores']:.2f} to the recognizer,"
        f" {measured['other_cores']:.2f} to everything else"
    )


def word_error_rate(reference: list[str], text: str) -> float:
    return sum(errors(reference, words(text)).values()) / len(reference)


async def main(options: argparse.Namespace) -> None:
    os.environ["STT_MAX_UPLOAD_BYTES"] = str(2 * 1024**3)
    work = Path(tempfile.mkdtemp(prefix="stt-bench-long-"))
    text = spoken_text(options.minutes)
    reference = words(text)
    recording = speak(text, work / "long.mp3")
    clip = speak(SHORT_CLIP, work / "clip.mp3")
    batch_clip, batch_clip_seconds = make_clip(work)
    report: dict[str, Any] = {"machine": machine(), "runs": {}}
    cores = os.cpu_count() or 1
    if options.three_hours_only:
        async with pipeline(
            work / "three-hours", "faster-whisper", recognizers=1, slots=cores, threads=1,
            transcoders=1, env={"STT_PIECE_SECONDS": str(options.piece_seconds[0])},
        ) as (base_url, stack, _settings):  # fmt: skip
            [recognizer] = stack.running("recognizer")
            await burst_polled(base_url, batch_clip, 2 * cores)  # warm: idle means after work
            memory = await memory_over(base_url, recognizer.pid, recording, work)
        print_memory(memory)
        out = RESULTS / f"{options.name}.json"
        out.write_text(json.dumps({"machine": report["machine"], "memory": memory}, indent=2))
        plot_memory(memory, out.with_suffix(".png"))
        print(f"wrote {out.relative_to(ROOT)} and {out.with_suffix('.png').relative_to(ROOT)}")
        return

    # The baseline: the whole recording, one piece, one slot.
    async with pipeline(
        work / "whole", "faster-whisper", recognizers=1, slots=1, threads=1, transcoders=1,
        env={"STT_PIECE_SECONDS": "86400"},
    ) as (base_url, stack, _settings):  # fmt: skip
        [recognizer] = stack.running("recognizer")
        whole = await transcribe(base_url, recording, recognizer.pid)
    duration = whole["job"]["duration_seconds"]
    report["audio_seconds"] = duration
    report["whole"] = {
        "latency_s": whole["latency_s"],
        "recognizer_cores": whole["recognizer_cores"],
        "other_cores": whole["other_cores"],
        "conversion_s": whole["job"]["conversion_seconds"],
        "wer": word_error_rate(reference, whole["job"]["text"]),
    }
    print(f"{duration / 60:.1f} min of speech; whole in one slot: {whole['latency_s']:.1f} s,"
          f" WER {report['whole']['wer']:.3f}; {cpu_use(whole)}", flush=True)  # fmt: skip

    for piece_seconds in options.piece_seconds:
        env = {"STT_PIECE_SECONDS": str(piece_seconds)}
        async with pipeline(
            work / f"pieces-{piece_seconds}", "faster-whisper", recognizers=1, slots=cores,
            threads=1, transcoders=1, env=env,
        ) as (base_url, stack, _settings):  # fmt: skip
            [recognizer] = stack.running("recognizer")
            pieces = await transcribe(base_url, recording, recognizer.pid)
            run: dict[str, Any] = {
                "pieces": pieces["job"]["progress"]["pieces_total"],
                "latency_s": pieces["latency_s"],
                "latency_vs_whole": pieces["latency_s"] / whole["latency_s"],
                "audio_s_per_wall_s": duration / pieces["latency_s"],
                "first_partial_s": pieces["first_partial_s"],
                "first_partial_after_accepted_s": pieces["first_partial_s"] - pieces["accepted_s"],
                "conversion_s": pieces["job"]["conversion_seconds"],
                "recognizer_cores": pieces["recognizer_cores"],
                "other_cores": pieces["other_cores"],
                "wer": word_error_rate(reference, pieces["job"]["text"]),
                "progress": pieces["progress"],
            }
            print(f"pieces of {piece_seconds} s ({run['pieces']}): {run['latency_s']:.1f} s"
                  f" = {run['latency_vs_whole']:.2f} x whole, first partial"
                  f" {run['first_partial_s']:.1f} s after the upload began"
                  f" ({run['first_partial_after_accepted_s']:.1f} s after it was accepted),"
                  f" WER {run['wer']:.3f}; {cpu_use(pieces)}", flush=True)  # fmt: skip
            if piece_seconds == options.piece_seconds[0] and not options.latency_only:
                await burst_polled(base_url, batch_clip, cores)  # warm-up
                _, _, makespan, _ = await burst_polled(base_url, batch_clip, 20)
                report["batch_audio_s_per_wall_s"] = 20 * batch_clip_seconds / makespan
                print(f"20 short clips: {report['batch_audio_s_per_wall_s']:.1f} audio s per"
                      " wall s", flush=True)  # fmt: skip
                short = await short_clips_during(base_url, recording, clip, tries=5)
                report["short_clip_during_long_s"] = short
                print(f"10 s clip during the long one: p50 {statistics.median(short):.1f} s"
                      f" ({', '.join(f'{s:.1f}' for s in short)})", flush=True)  # fmt: skip
                if not options.skip_memory:
                    report["memory"] = await memory_over(base_url, recognizer.pid, recording, work)
                    print_memory(report["memory"])
        report["runs"][str(piece_seconds)] = run
    out = RESULTS / f"{options.name}.json"
    out.write_text(json.dumps(report, indent=2))
    plot(report, out.with_suffix(".png"))
    print(f"wrote {out.relative_to(ROOT)} and {out.with_suffix('.png').relative_to(ROOT)}")


def plot(report: dict[str, Any], path: Path) -> None:
    minutes = report["audio_seconds"] / 60
    title = f"One {minutes:.0f}-minute recording"
    with chart(path, title, "seconds after upload", "minutes of audio recognized") as axes:
        for piece_seconds, run in report["runs"].items():
            times = [0.0, *(moment for moment, _ in run["progress"]), run["latency_s"]]
            done = [0.0, *(seconds / 60 for _, seconds in run["progress"]), minutes]
            axes.step(
                times, done, where="post", marker=".", label=f"pieces of {piece_seconds} s, 2 slots"
            )
        whole = report["whole"]["latency_s"]
        axes.step([0, whole], [0, minutes], where="post", linestyle="--", label="whole, 1 slot")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60, help="at most; the text lasts ~37")
    parser.add_argument("--piece-seconds", type=float, nargs="+", default=[60])
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only the long recording's latency: no short clips, no memory",
    )
    parser.add_argument(
        "--three-hours-only",
        action="store_true",
        help="only a three-hour video: when its first words come, and the recognizer's memory",
    )
    parser.add_argument("--name", default="long", help="results file in bench/results")
    asyncio.run(main(parser.parse_args()))
