"""How the tests talk to the gateway, the way a client would."""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

FINAL = ("done", "failed")


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
