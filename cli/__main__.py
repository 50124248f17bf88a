"""`stt`: the service from a terminal.

    stt transcribe talk.mp4 interview.mp3 --format srt      # writes talk.srt, interview.srt
    stt transcribe memo.m4a -o -                            # the text to stdout
    stt transcribe https://example.com/ep12.mp3             # the service fetches it; ep12.txt here
    stt transcribe call.mp3 --speakers 2                    # who said what (--speakers alone: count them)
    stt jobs | stt get ID --format vtt | stt cancel ID | stt delete ID
    stt live meeting.mp3                                    # a live session, at real-time pace

The address and key come from --url and --api-key, or STT_URL and STT_API_KEY. Exit status: 0
when everything asked for is done, 1 when any of it failed (each failure on stderr), 2 for a
command used wrongly.
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli.live import LiveFailed, live
from shared.formats import DEFAULT_FORMAT, TRANSCRIPT_FORMATS

STATUS_WORDS = {
    "queued": "waiting",
    "transcoding": "converting",
    "recognizing": "transcribing",
    "done": "done",
    "failed": "failed",
}
TIMEOUT = httpx.Timeout(30, read=None)  # the event stream stays open as long as the job runs

errors = Console(stderr=True, highlight=False)


AUTOMATIC = 0
MAX_SPEAKERS = 20


def speaker_count(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_SPEAKERS:
        raise argparse.ArgumentTypeError(f"give a number of speakers from 1 to {MAX_SPEAKERS}")
    return int(value)


class Failed(Exception):
    """Something asked for did not come out; the message says what, in words."""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stt", description="Transcribe media with the service.")
    parser.add_argument("--url", default=os.environ.get("STT_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("STT_API_KEY"))
    commands = parser.add_subparsers(dest="command", required=True)

    transcribe = commands.add_parser(
        "transcribe", help="upload files (or give media URLs) and wait for transcripts"
    )
    transcribe.add_argument(
        "sources", nargs="+", metavar="FILE_OR_URL", help="an http(s) URL is fetched by the service"
    )
    transcribe.add_argument("--engine")
    transcribe.add_argument("--language")
    transcribe.add_argument("--format", choices=tuple(TRANSCRIPT_FORMATS), default=DEFAULT_FORMAT)
    transcribe.add_argument(
        "--speakers",
        type=speaker_count,
        nargs="?",
        const=AUTOMATIC,
        metavar="N",
        help="label who speaks; N says how many speakers there are (without N they are counted)",
    )
    transcribe.add_argument(
        "--output-dir", type=Path, help="default: beside each file, here for a URL"
    )
    transcribe.add_argument(
        "-o", "--output", help="'-' writes a single file's transcript to stdout"
    )

    live = commands.add_parser(
        "live", help="stream a file ('-': standard input) to a live session at real-time pace"
    )
    live.add_argument("source", metavar="FILE|-")
    live.add_argument("--language")
    live.add_argument("--engine", help="default: the service's")
    live.add_argument(
        "--speed", type=float, default=1.0, help="times real time (default 1: real time)"
    )

    jobs = commands.add_parser("jobs", help="your recent jobs, newest first")
    jobs.add_argument("--status", choices=tuple(STATUS_WORDS))
    jobs.add_argument("--limit", type=int, default=20)

    get = commands.add_parser("get", help="a job's transcript")
    get.add_argument("job_id")
    get.add_argument("--format", choices=tuple(TRANSCRIPT_FORMATS), default=DEFAULT_FORMAT)
    for name, what in (("delete", "forget a job and its files"), ("cancel", "stop a job")):
        commands.add_parser(name, help=what).add_argument("job_id")

    options = parser.parse_args(argv)
    if options.command == "transcribe":
        if options.output not in (None, "-"):
            parser.error("-o takes only '-' (stdout); use --output-dir for a folder")
        if options.output == "-" and len(options.sources) > 1:
            parser.error("-o - writes one transcript; give a single file")
        missing = [
            source
            for source in options.sources
            if not is_url(source) and not Path(source).is_file()
        ]
        if missing:
            parser.error(f"no such file: {', '.join(missing)}")
    if options.command == "live":
        if options.source != "-" and not Path(options.source).is_file():
            parser.error(f"no such file: {options.source}")
        if options.speed <= 0:
            parser.error("--speed must be above 0")
    return options


def main(argv: list[str] | None = None) -> None:
    options = parse(sys.argv[1:] if argv is None else argv)
    sys.exit(asyncio.run(run(options)))


async def run(options: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    async with httpx.AsyncClient(base_url=options.url, headers=headers, timeout=TIMEOUT) as client:
        try:
            if options.command == "transcribe":
                return await transcribe_all(client, options)
            if options.command == "live":
                return await live(
                    options.url,
                    options.api_key,
                    options.source,
                    options.language,
                    options.engine,
                    options.speed,
                    errors,
                )
            if options.command == "jobs":
                await list_jobs(client, options.status, options.limit)
            elif options.command == "get":
                sys.stdout.write(await transcript(client, options.job_id, options.format))
            elif options.command == "delete":
                await request(client, "DELETE", f"/v1/jobs/{options.job_id}")
            elif options.command == "cancel":
                await request(client, "POST", f"/v1/jobs/{options.job_id}/cancel")
        except (Failed, LiveFailed) as failure:
            errors.print(f"stt: {failure}")
            return 1
    return 0


async def request(
    client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise Failed(f"cannot reach the service at {client.base_url} ({error})") from error
    if response.is_error:
        raise Failed(message_of(response))
    return response


def message_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"the service answered {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if response.status_code == 401:
        return "the service wants an API key: --api-key or STT_API_KEY"
    return f"the service answered {response.status_code}: {json.dumps(body)[:300]}"


async def transcribe_all(client: httpx.AsyncClient, options: argparse.Namespace) -> int:
    to_stdout = options.output == "-"
    with Progress(
        TextColumn("{task.fields[name]}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f} %"),
        TextColumn("{task.fields[state]}"),
        TimeRemainingColumn(),
        console=errors,
        transient=to_stdout,
    ) as progress:
        outcomes = await asyncio.gather(
            *(transcribe_one(client, options, source, progress) for source in options.sources),
            return_exceptions=True,
        )
    failed = 0
    for source, outcome in zip(options.sources, outcomes, strict=True):
        if isinstance(outcome, Failed):
            errors.print(f"stt: {source}: {outcome}")
            failed += 1
        elif isinstance(outcome, BaseException):
            raise outcome
        elif to_stdout:
            sys.stdout.write(outcome)
        else:
            errors.print(f"{source} -> {outcome}")
    return 1 if failed else 0


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def name_of(source: str) -> str:
    """What a file or URL is called: the file's name, or the last part of the URL's path."""
    if not is_url(source):
        return Path(source).name
    address = urlsplit(source)
    return unquote(address.path.rsplit("/", 1)[-1]) or address.hostname or "transcript"


async def transcribe_one(
    client: httpx.AsyncClient, options: argparse.Namespace, source: str, progress: Progress
) -> str:
    """Upload (or hand over the URL), follow, fetch: the transcript itself for stdout, else the
    file written."""
    name = name_of(source)
    task = progress.add_task("", total=100, name=name, state="uploading")
    fields = upload_fields(options)
    if is_url(source):
        form = {"url": (None, source), **{key: (None, value) for key, value in fields.items()}}
        accepted = await request(client, "POST", "/v1/jobs", files=form)
    else:
        with await asyncio.to_thread(Path(source).open, "rb") as file:
            accepted = await request(client, "POST", "/v1/jobs", files={"file": file}, data=fields)
    job_id = accepted.json()["job_id"]
    async for event, data in job_events(client, job_id):
        follow(progress, task, event, data)
    job = (await request(client, "GET", f"/v1/jobs/{job_id}")).json()
    if job["status"] != "done":
        progress.update(task, state="failed")
        raise Failed(
            job["error"]["message"] if job.get("error") else f"the job ended {job['status']}"
        )
    text = await transcript(client, job_id, options.format)
    if options.output == "-":
        return text
    folder = options.output_dir or (Path() if is_url(source) else Path(source).parent)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{Path(name).stem or 'transcript'}.{options.format}"
    await asyncio.to_thread(target.write_text, text)
    return str(target)


def upload_fields(options: argparse.Namespace) -> dict[str, str]:
    """The form fields `transcribe` sends besides the file."""
    fields = {
        name: value
        for name, value in (("engine", options.engine), ("language", options.language))
        if value
    }
    if options.speakers is not None:
        fields["diarize"] = "true"
        if options.speakers != AUTOMATIC:
            fields["speakers"] = str(options.speakers)
    return fields


def follow(progress: Progress, task: TaskID, event: str, data: dict[str, Any]) -> None:
    shown = data.get("progress") or {}
    total, done = shown.get("audio_seconds_total"), shown.get("audio_seconds_done", 0)
    status = data.get("status")
    if status == "done":
        progress.update(task, completed=100, state="done")
    elif status is not None:
        progress.update(task, state=STATUS_WORDS.get(status, status))
    if event == "progress" and total:
        progress.update(task, completed=100 * done / total, state="transcribing")


async def job_events(
    client: httpx.AsyncClient, job_id: str
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The job's server-sent events, as (event, data), until the job ends."""
    try:
        async with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
            if response.is_error:
                await response.aread()
                raise Failed(message_of(response))
            event, data = "message", []
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield event, json.loads("\n".join(data))
                    event, data = "message", []
    except httpx.HTTPError as error:
        raise Failed(f"lost the service while following job {job_id} ({error})") from error


async def transcript(client: httpx.AsyncClient, job_id: str, format: str) -> str:
    response = await request(
        client, "GET", f"/v1/jobs/{job_id}/transcript", params={"format": format}
    )
    return response.text if response.text.endswith("\n") else response.text + "\n"


async def list_jobs(client: httpx.AsyncClient, status: str | None, limit: int) -> None:
    params: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
    jobs = (await request(client, "GET", "/v1/jobs", params=params)).json()["jobs"]
    table = Table("job id", "file", "status", "engine", "created", box=None)
    for job in jobs:
        table.add_row(
            job["job_id"],
            job.get("filename") or "",
            STATUS_WORDS.get(job["status"], job["status"]),
            job["engine"],
            job["created_at"][:19].replace("T", " "),
        )
    Console(highlight=False, width=200).print(table)


if __name__ == "__main__":
    main()
