"""How the tests talk to the gateway, the way a client would."""

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

FINAL = ("done", "failed")


async def until(check: Callable[[], bool], within: float = 10) -> None:
    """Until `check` holds, looked at every 20 ms; it fails the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.02)


async def upload(
    client: httpx.AsyncClient, path: Path, route: str = "/v1/jobs", **fields: str
) -> httpx.Response:
    with path.open("rb") as file:
        return await client.post(route, files={"file": (path.name, file)}, data=fields)


async def accepted_job_id(client: httpx.AsyncClient, path: Path, **fields: str) -> str:
    accepted = await upload(client, path, **fields)
    assert accepted.status_code == 202, accepted.text
    job_id: str = accepted.json()["job_id"]
    return job_id


async def until_status(
    client: httpx.AsyncClient, job_id: str, statuses: tuple[str, ...] = FINAL, within: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/jobs/{job_id}")
        if response.status_code == 200:
            job: dict[str, Any] = response.json()
            if job["status"] in statuses:
                return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} not {' or '.join(statuses)} within {within} s")


async def submit(client: httpx.AsyncClient, path: Path, **fields: str) -> dict[str, Any]:
    return await until_status(client, await accepted_job_id(client, path, **fields))


@dataclass
class EventStream:
    content_type: str
    statuses: list[dict[str, Any]] = field(default_factory=list)
    """The data of each `status` event: the job document."""
    progress: list[dict[str, Any]] = field(default_factory=list)
    """The data of each `progress` event: progress and the segments of a piece."""
    comments: int = 0


async def follow(client: httpx.AsyncClient, job_id: str, within: float = 90) -> EventStream:
    """Read GET /v1/jobs/{job_id}/events to its end, the way an EventSource would."""
    async with (
        asyncio.timeout(within),
        client.stream("GET", f"/v1/jobs/{job_id}/events") as response,
    ):
        assert response.status_code == 200, await response.aread()
        stream = EventStream(response.headers["content-type"])
        event = ""
        async for line in response.aiter_lines():
            if line.startswith(":"):
                stream.comments += 1
            elif line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                assert event in ("status", "progress"), line
                (stream.statuses if event == "status" else stream.progress).append(data)
    return stream
