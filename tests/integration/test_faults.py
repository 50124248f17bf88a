"""Faults inflicted on the real processes: every accepted job still ends done or failed with its
code, none lost or duplicated. Tests that stop a shared service start it again."""

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from scripts.replay import replay
from tests import media
from tests.integration.api import accepted_job_id, until_status, upload
from tests.integration.conftest import ONLY_WHISPER, Database, RunningSystem, launched

DELIVERY_LIMIT = 2


@pytest.fixture(scope="module")
async def system(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningSystem]:
    async with launched(
        tmp_path_factory.mktemp("faults"),
        database.url,
        delivery_limit=DELIVERY_LIMIT,
        retry_delays_seconds=(0.5, 1, 2, 3, 5, 8),
        cleanup_delay_seconds=2,
        recognizer_slots=1,
        shutdown_grace_seconds=20,
        engines=ONLY_WHISPER,
    ) as running:
        yield running


async def count_jobs(system: RunningSystem) -> int:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(str(system.settings.mongodb_url))
    try:
        return await client[system.settings.mongodb_database]["jobs"].count_documents({})
    finally:
        await client.close()


def uploads(system: RunningSystem) -> set[Path]:
    return set((Path(system.settings.media_dir) / "uploads").iterdir())


def kill(process: subprocess.Popen[bytes], signum: int = signal.SIGKILL) -> int:
    os.kill(process.pid, signum)
    return process.wait(timeout=60)


async def test_a_recognizer_killed_mid_job_loses_nothing(
    system: RunningSystem, long_speech: Path
) -> None:
    async with system.client() as client:
        job_id = await accepted_job_id(client, long_speech)
        await until_status(client, job_id, ("recognizing",))
        assert kill(system.only("recognizer")) == -signal.SIGKILL
        system.start("recognizer")
        job = await until_status(client, job_id)
        await system.until_at_work()
    assert job["status"] == "done", job
    assert set(media.EXPECTED_WORDS) <= media.words_of(job["text"])


async def test_sigterm_lets_the_job_in_hand_finish_then_exits_cleanly(
    system: RunningSystem, long_speech: Path
) -> None:
    async with system.client() as client:
        job_id = await accepted_job_id(client, long_speech)
        await until_status(client, job_id, ("recognizing",))
        assert kill(system.only("recognizer"), signal.SIGTERM) == 0
        job = await until_status(client, job_id, within=1)
        system.start("recognizer")
        await system.until_at_work()
    assert job["status"] == "done", job


async def test_a_job_that_keeps_killing_its_worker_is_parked_and_fails(
    system: RunningSystem, long_speech: Path
) -> None:
    async with system.client() as client:
        job_id = await accepted_job_id(client, long_speech)
        for delivery in range(1, DELIVERY_LIMIT + 2):
            # Kill the worker only once it has the message in an engine.
            await until_engine_runs(system, job_id, times=delivery)
            kill(system.only("recognizer"))
            system.start("recognizer")
        job = await until_status(client, job_id)
        # The cause is gone (a worker that does not die): replaying the job, while its upload
        # is kept (the cleanup delay), completes it.
        refused = await replay(system.settings, [job_id])
        replayed = await until_status(client, job_id)
        await system.until_at_work()
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "processing_error"
    assert refused == 0
    assert replayed["status"] == "done", replayed
    assert set(media.EXPECTED_WORDS) <= media.words_of(replayed["text"])


def engine_runs(system: RunningSystem, job_id: str) -> int:
    """How often the recognizers have started an engine on the job (their log says so)."""
    log = (system.log_dir / "recognizer.log").read_text(errors="replace")
    return log.count(f"job {job_id}: recognizing piece")


async def until_engine_runs(
    system: RunningSystem, job_id: str, times: int, within: float = 60
) -> None:
    deadline = time.monotonic() + within
    while engine_runs(system, job_id) < times:
        assert time.monotonic() < deadline, f"job {job_id} not taken up {times} times in time"
        await asyncio.sleep(0.05)


@pytest.mark.alone
async def test_the_broker_restarting_during_a_batch_loses_no_job(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        batch = [await accepted_job_id(client, clips[kind]) for kind in ("mp3", "wav", "mp4") * 2]
        jobs_before, files_before = await count_jobs(system), uploads(system)
        await rabbitmqctl("stop_app")
        try:
            refused = await upload(client, clips["wav"])
            assert refused.status_code == 503
            assert refused.headers["retry-after"]
            assert (await client.get("/readyz")).status_code == 503
            assert await count_jobs(system) == jobs_before
            assert uploads(system) <= files_before
        finally:
            await rabbitmqctl("start_app")
            await rabbitmqctl("await_startup")
        await until_ready(client)
        await system.until_at_work()
        batch.append(await accepted_job_id(client, clips["mp3"]))
        finished = [await until_status(client, job_id) for job_id in batch]
    assert [job["status"] for job in finished] == ["done"] * len(batch), finished
    for job in finished:
        assert set(media.EXPECTED_WORDS) <= media.words_of(job["text"])


async def test_a_database_outage_pauses_work_without_failing_it(
    system: RunningSystem, database: Database, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        batch = [await accepted_job_id(client, clips[kind]) for kind in ("mp3", "wav", "mp4")]
        database.stop()
        try:
            assert (await client.get("/readyz")).status_code == 503
            await asyncio.sleep(3)
        finally:
            database.start()
        await until_ready(client)
        finished = [await until_status(client, job_id) for job_id in batch]
    assert [job["status"] for job in finished] == ["done"] * len(batch), finished


async def test_the_gateway_drains_an_upload_in_progress_on_sigterm(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    content = clips["wav"].read_bytes()
    boundary = "drain-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\n'
        f"Content-Type: audio/wav\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    sent_head = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield head + content[:1000]
        sent_head.set()
        await asyncio.sleep(1.5)
        yield content[1000:] + tail

    async with system.client() as client:
        posting = asyncio.create_task(
            client.post(
                "/v1/jobs",
                content=slow_body(),
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            )
        )
        await sent_head.wait()
        await asyncio.sleep(0.3)
        gateway = system.only("gateway")
        os.kill(gateway.pid, signal.SIGTERM)
        response = await posting
        assert gateway.wait(timeout=30) == 0
        system.start("gateway")
        await until_ready(client)
        assert response.status_code == 202, response.text
        job = await until_status(client, response.json()["job_id"])
    assert job["status"] == "done"


async def test_a_job_nobody_finishes_expires_at_its_deadline(
    database: Database, clips: dict[str, Path], tmp_path: Path
) -> None:
    without_transcoder = ("gateway", "recognizer", "janitor")
    async with (
        launched(
            tmp_path,
            database.url,
            without_transcoder,
            job_deadline_seconds=2,
            sweep_interval_seconds=0.5,
            cleanup_delay_seconds=1,
            engines=("faster-whisper",),
            recognizer_slots=1,
            native_wait_seconds=0.5,
        ) as running,  # fmt: skip
        running.client() as client,
    ):
        unserved = await upload(client, clips["wav"], engine="sphinx")
        assert unserved.status_code == 422
        assert "No recognizer serves the engine 'sphinx'" in unserved.json()["detail"]
        waited = await upload(client, clips["wav"], route="/stt/native")
        assert waited.status_code == 504
        assert waited.json()["job_id"] in waited.json()["detail"]
        job_id = await accepted_job_id(client, clips["wav"])
        under_way = await client.delete(f"/v1/jobs/{job_id}")
        assert under_way.status_code == 409
        assert "can be deleted once it is done or failed" in under_way.json()["detail"]
        job = await until_status(client, job_id, within=10)
        assert job["status"] == "failed"
        assert job["error"]["code"] == "expired"
        upload_path = Path(running.settings.media_dir) / "uploads" / job_id
        deadline = time.monotonic() + 10
        while upload_path.exists():
            assert time.monotonic() < deadline, "the expired job's upload was never deleted"
            await asyncio.sleep(0.2)


async def rabbitmqctl(command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, errors = await process.communicate()
    assert process.returncode == 0, errors.decode()


async def until_ready(client: httpx.AsyncClient, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"the gateway was not ready again within {within} s")


async def test_a_recognizer_whose_model_cannot_load_again_exits_instead_of_hanging(
    mongodb_url: str, tmp_path: Path, clips: dict[str, Path]
) -> None:
    """Its only slot overruns and is killed; its model is gone from the disk by then, so no new
    slot starts. After its tries it hands its work back and exits with status 1."""
    models = tmp_path / "models"
    async with launched(
        tmp_path, mongodb_url, services=("gateway", "transcoder", "janitor"), recognizer_slots=1
    ) as running:
        recognizer = running.start(
            "recognizer",
            STT_ENGINES="whisper-base",
            STT_DEFAULT_ENGINE="whisper-base",
            STT_MODELS_DIR=str(models),
            STT_RECOGNITION_TIMEOUT_SECONDS="0.05",
            STT_SLOT_RESTART_PAUSE_SECONDS="0.1",
        )
        await running.until_at_work()
        await asyncio.to_thread(shutil.rmtree, models)
        async with running.client() as client:
            job = await until_status(
                client, await accepted_job_id(client, clips["wav"], engine="whisper-base")
            )
        status = await asyncio.to_thread(recognizer.wait, 60)
        log = (running.log_dir / "recognizer.log").read_text()
    assert status == 1
    assert job["error"]["code"] == "timeout"
    assert "a new slot did not start (try 3 of 3)" in log
    assert "recognizer halting: no slot could be started in 3 tries" in log
