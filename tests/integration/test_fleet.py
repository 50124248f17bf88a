"""Recognizers come and go: jobs wait for them instead of being refused, and a worker that
cannot read the media hands the work on instead of failing it."""

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from scripts.stack import SERVICES, Stack, delete_namespace, free_port
from tests import media
from tests.integration.api import accepted_job_id, until_status, upload
from tests.integration.conftest import (
    FAST,
    ONLY_WHISPER,
    Database,
    RunningSystem,
    as_environment,
    launched,
    namespaced_settings,
)
from tests.integration.test_faults import kill, until_engine_runs
from tests.media_server import media_server


async def test_an_upload_the_moment_the_gateway_is_ready_is_accepted_and_done(
    mongodb_url: str, tmp_path: Path, clips: dict[str, Path]
) -> None:
    settings = namespaced_settings(mongodb_url, tmp_path / "media", recognizer_slots=1)
    port = free_port()
    stack = Stack(as_environment(settings, port=port), log_dir=tmp_path / "logs")
    try:
        for service in SERVICES:
            stack.start(service)
        base_url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(stack.wait_ready, base_url, 120)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            accepted = await upload(client, clips["wav"])
            assert accepted.status_code == 202, accepted.text
            job = await until_status(client, accepted.json()["job_id"], within=120)
    finally:
        stack.stop()
        await delete_namespace(settings)
    assert job["status"] == "done", job
    assert set(media.EXPECTED_WORDS) <= media.words_of(job["text"])


@pytest.fixture(scope="module")
async def fleet(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningSystem]:
    """A MongoDB of its own: queue positions count every waiting job the server holds."""
    services = ("gateway", "transcoder", "recognizer", "janitor")
    async with launched(
        tmp_path_factory.mktemp("fleet"),
        database.url,
        services=services,
        recognizer_slots=1,
        retry_delays_seconds=(0.2, 0.4, 0.8, 1, 1, 1, 1, 1, 1, 1),
        default_engine=FAST,
    ) as running:
        yield running


async def test_with_every_recognizer_stopped_uploads_wait_until_one_starts(
    fleet: RunningSystem, clips: dict[str, Path]
) -> None:
    assert kill(fleet.only("recognizer"), signal.SIGTERM) == 0
    async with fleet.client() as client:
        job_ids = [await accepted_job_id(client, clips[kind]) for kind in ("wav", "mp3", "mp4")]
        waiting = [await until_status(client, job_id, ("transcoding",)) for job_id in job_ids]
        fleet.start("recognizer")
        jobs = [await until_status(client, job_id, within=120) for job_id in job_ids]
    assert {job["status"] for job in waiting} == {"transcoding"}
    assert [job["queue_position"] for job in waiting] == [0, 1, 2]
    assert [job["status"] for job in jobs] == ["done"] * 3


async def test_an_engine_neither_configured_nor_served_is_refused(
    fleet: RunningSystem, clips: dict[str, Path]
) -> None:
    async with fleet.client() as client:
        refused = await upload(client, clips["wav"], engine="google")
    assert refused.status_code == 422
    assert "No recognizer serves the engine 'google'" in refused.json()["detail"]


async def test_a_recognizer_with_the_wrong_media_folder_hands_its_work_on(
    fleet: RunningSystem, clips: dict[str, Path], tmp_path: Path
) -> None:
    misconfigured = fleet.start("recognizer", STT_MEDIA_DIR=str(tmp_path / "elsewhere"))
    try:
        async with fleet.client() as client:
            await until_live(client, recognizers=2)
            job_ids = [await accepted_job_id(client, clips["wav"]) for _ in range(6)]
            jobs = [await until_status(client, job_id, within=120) for job_id in job_ids]
            ready = (await client.get("/readyz")).json()
    finally:
        assert kill(misconfigured, signal.SIGTERM) == 0
    assert [job["status"] for job in jobs] == ["done"] * 6
    problems = ready["recognizers"]["faster-whisper"]["problems"]
    assert any("STT_MEDIA_DIR" in problem for problem in problems), ready


async def until_live(client: httpx.AsyncClient, recognizers: int, within: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        ready = (await client.get("/readyz")).json()
        live = ready["recognizers"].get("faster-whisper", {}).get("live", 0)
        if live >= recognizers:
            return
        assert asyncio.get_running_loop().time() < deadline, ready
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def hosts(
    mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningSystem]:
    """Media in GridFS, and every service with a folder of its own, as on separate machines."""
    root = tmp_path_factory.mktemp("hosts")
    async with launched(
        root,
        mongodb_url,
        services=("gateway", "janitor"),
        media_store="gridfs",
        engines=ONLY_WHISPER,
        piece_seconds=15,
        recognizer_slots=1,
        cleanup_delay_seconds=2,
    ) as running:
        running.start(
            "transcoder", STT_MEDIA_DIR=str(root / "host-t"), STT_FETCH_ALLOWED_HOSTS="127.0.0.1"
        )
        for host in ("host-a", "host-b"):
            running.start("recognizer", STT_MEDIA_DIR=str(root / host))
        await running.until_at_work(("transcoder", "recognizer"))
        yield running


def files_of(job_id: str, folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if job_id in str(path)]


async def stored_files(system: RunningSystem, job_id: str) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(str(system.settings.mongodb_url))
    try:
        files = client[system.settings.mongodb_database]["media.files"]
        return [document async for document in files.find({"metadata.job_id": job_id})]
    finally:
        await client.close()


async def test_workers_without_a_shared_folder_share_a_recording_through_gridfs(
    hosts: RunningSystem, tmp_path: Path
) -> None:
    story = media.to_mp3(media.speak(media.STORY, tmp_path / "story.wav"), tmp_path / "story.mp3")
    async with hosts.client() as client:
        job_id = await accepted_job_id(client, story)
        await until_engine_runs(hosts, job_id, times=3)
        stored_while_running = await stored_files(hosts, job_id)
        victim, _survivor = hosts.stack.running("recognizer")
        assert kill(victim) == -signal.SIGKILL
        job = await until_status(client, job_id, within=120)
        async with asyncio.timeout(30):  # the cleanup delay, then the janitor deletes them
            while True:
                left = await stored_files(hosts, job_id)
                if not left:
                    break
                await asyncio.sleep(0.2)
        hosts.start("recognizer", STT_MEDIA_DIR=str(tmp_path / "host-c"))
    assert job["status"] == "done", job
    assert {"village", "market", "bridge", "library"} <= media.words_of(job["text"])
    names = {document["filename"] for document in stored_while_running}
    assert f"{job_id}/upload" in names
    assert any(name.startswith(f"{job_id}/piece-") for name in names)
    assert left == []
    # Scratch copies are deleted once used (but for what the killed one had in hand).
    root = Path(hosts.settings.media_dir).parent
    for folder in ("media", "host-t", "host-b"):
        assert await asyncio.to_thread(files_of, job_id, root / folder) == []


async def test_media_given_by_url_is_fetched_into_gridfs(
    hosts: RunningSystem, clips: dict[str, Path]
) -> None:
    with media_server(clips["mp3"].read_bytes()) as server:
        async with hosts.client() as client:
            accepted = await client.post("/v1/jobs", files={"url": (None, server.at("/media"))})
            job_id = accepted.json()["job_id"]
            # Once the media has arrived, and long before the janitor cleans up.
            await until_status(client, job_id, ("recognizing", "done", "failed"))
            stored = await stored_files(hosts, job_id)
            job = await until_status(client, job_id)
    assert job["status"] == "done", job
    assert set(media.EXPECTED_WORDS) <= media.words_of(job["text"])
    assert f"{job_id}/upload" in {document["filename"] for document in stored}
    root = Path(hosts.settings.media_dir).parent
    assert await asyncio.to_thread(files_of, job_id, root / "host-t") == []


async def test_two_recognizers_with_one_slot_each_take_two_jobs_at_once(
    hosts: RunningSystem, clips: dict[str, Path]
) -> None:
    """A job shows `recognizing` only while a slot works on it: two at once means both
    recognizers (one slot each) are busy, not one holding both."""
    await hosts.until_at_work()
    async with hosts.client() as client:
        job_ids = [await accepted_job_id(client, clips["wav"]) for _ in range(2)]
        both_recognizing = False
        deadline = asyncio.get_running_loop().time() + 120
        while not both_recognizing:
            statuses = [
                (await client.get(f"/v1/jobs/{job_id}")).json()["status"] for job_id in job_ids
            ]
            both_recognizing = statuses == ["recognizing", "recognizing"]
            if "done" in statuses or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        jobs = [await until_status(client, job_id, within=120) for job_id in job_ids]
    assert both_recognizing, statuses
    assert [job["status"] for job in jobs] == ["done", "done"]
