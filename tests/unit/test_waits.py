"""Long waits per key: event streams and requests that wait on a job's end are counted per key on
each gateway process, and one past STT_MAX_WAITS_PER_KEY gets 429 at once. The real app under
uvicorn on loopback (streams must really stay open), with the pipeline replaced by stand-ins
whose jobs never finish."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from gateway.app import create_app
from gateway.backlog import Backlog
from gateway.services import Services
from gateway.settings import GatewaySettings
from gateway.watcher import Update
from shared.jobs.models import Job, JobStatus
from shared.media import MediaPaths
from shared.media_store import FolderStore
from tests.fakes import FakeBroker, FakeFleet, FakeJobs, a_job

LIMIT = 2
KEYS = (SecretStr("billing:b-s3cret"), SecretStr("support:s-s3cret"))
BILLING = {"Authorization": "Bearer b-s3cret"}
SUPPORT = {"Authorization": "Bearer s-s3cret"}
JOB_IDS = {"billing": "a" * 32, "support": "b" * 32}


class EndlessWatcher:
    """Jobs that never finish: streams get a keepalive now and then, waits run out."""

    async def changes(self, job_id: str, keepalive_seconds: float) -> AsyncGenerator[Update, None]:
        while True:
            yield None
            await asyncio.sleep(keepalive_seconds)

    async def wait_until_finished(self, job_id: str, timeout_seconds: float) -> Job | None:
        await asyncio.sleep(timeout_seconds)
        return None


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


@pytest.fixture
async def gateway(tmp_path: Path, jobs: FakeJobs) -> AsyncIterator[str]:
    settings = GatewaySettings(
        media_dir=tmp_path,
        api_keys=KEYS,
        max_waits_per_key=LIMIT,
        native_wait_seconds=4,
        events_keepalive_seconds=0.1,
    )
    broker, fleet = FakeBroker(), FakeFleet()
    for owner, job_id in JOB_IDS.items():
        jobs.add(a_job(job_id, JobStatus.RECOGNIZING, owner=owner))
    fakes = cast(Any, (broker, jobs, fleet))
    services = Services(
        settings,
        fakes[0],
        fakes[1],
        FolderStore(MediaPaths(tmp_path)),
        cast(Any, EndlessWatcher()),
        fakes[2],
        Backlog(*fakes),
    )
    # Listening before uvicorn starts: connections wait in the backlog until it accepts them.
    listening = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(settings, services), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    server.should_exit = True
    await serving


async def open_stream(
    client: httpx.AsyncClient,
    stack: contextlib.AsyncExitStack,
    headers: dict[str, str],
    retry: bool = False,
) -> httpx.Response:
    """An event stream held open for the rest of `stack`; with `retry`, asked again (for up to
    5 s) while the gateway still counts streams that were closed a moment ago."""
    owner = "billing" if headers is BILLING else "support"
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        request = client.stream("GET", f"/v1/jobs/{JOB_IDS[owner]}/events", headers=headers)
        stream = await stack.enter_async_context(request)
        if stream.status_code != 429 or not retry:
            return stream
        if asyncio.get_running_loop().time() > deadline:
            return stream
        await asyncio.sleep(0.1)


async def test_a_key_may_hold_only_so_many_event_streams(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        async with contextlib.AsyncExitStack() as streams:
            held = [await open_stream(client, streams, BILLING) for _ in range(LIMIT)]
            assert [stream.status_code for stream in held] == [200] * LIMIT
            refused = await client.get(f"/v1/jobs/{JOB_IDS['billing']}/events", headers=BILLING)
            assert refused.status_code == 429
            assert "STT_MAX_WAITS_PER_KEY" in refused.json()["detail"]
            assert refused.headers["retry-after"]
            # Another key is not held back by the first.
            other = await open_stream(client, streams, SUPPORT)
            assert other.status_code == 200
        # Streams the client closed are counted no more, once the gateway has seen them go.
        async with contextlib.AsyncExitStack() as streams:
            again = [await open_stream(client, streams, BILLING, retry=True) for _ in range(LIMIT)]
            assert [stream.status_code for stream in again] == [200] * LIMIT


async def test_waiting_requests_count_with_streams_and_are_refused_before_a_job_is_made(
    gateway: str, jobs: FakeJobs, clips: dict[str, Path]
) -> None:
    speech = clips["wav"].read_bytes()
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        async with contextlib.AsyncExitStack() as streams:
            await open_stream(client, streams, BILLING)
            waiting = asyncio.create_task(
                client.post("/stt/native", files={"file": ("a.wav", speech)}, headers=BILLING)
            )
            await asyncio.sleep(0.5)
            openai = await client.post(
                "/v1/audio/transcriptions",
                files={"file": ("a.wav", speech), "model": (None, "whisper-1")},
                headers=BILLING,
            )
            native = await client.post(
                "/stt/native", files={"file": ("a.wav", speech)}, headers=BILLING
            )
            assert (await waiting).status_code == 504  # it waited its time, then gave up
        assert openai.status_code == 429
        assert openai.json()["error"]["code"] == "rate_limit_exceeded"
        assert native.status_code == 429
    assert len(jobs.jobs) == len(JOB_IDS) + 1  # the refused requests made none
