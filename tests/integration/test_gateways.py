"""Two gateways serving the same jobs, with Debian's HAProxy in front of them: what a client
sees must not depend on which gateway it reaches, and a gateway restarting loses nothing."""

import asyncio
import os
import signal
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from scripts.stack import free_port
from tests import media
from tests.integration.api import accepted_job_id, follow, until, until_status, upload
from tests.integration.conftest import FAST, ONLY_WHISPER, Database, RunningSystem, launched
from tests.live import (
    SENTENCES,
    LiveClient,
    open_session,
    speech_with_pauses,
)
from tests.proxy import HAPROXY, haproxy
from tests.stand_in import StandIn, http_stand_in

pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")

BURST = 20
KEY = "alice:key-alice"
OTHER_KEY = "bob:key-bob"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.partition(':')[2]}"}


@dataclass
class Gateways:
    """Two gateway processes of one system, and HAProxy in front of both."""

    system: RunningSystem
    ports: list[int]
    processes: list[subprocess.Popen[bytes]]
    proxy_url: str
    folder: Path

    def url(self, number: int) -> str:
        return f"http://127.0.0.1:{self.ports[number]}"

    def client(self, base_url: str, key: str = KEY) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base_url, timeout=60, headers=bearer(key))

    async def stop(self, number: int) -> None:
        """SIGTERM: the gateway drains what it has in hand, then exits."""
        process = self.processes[number]
        os.kill(process.pid, signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 60) == 0
        # The stack would take the ended process for a crash.
        self.system.stack.processes.remove(("gateway", process))

    async def start(self, number: int) -> None:
        self.processes[number] = self.system.start("gateway", STT_PORT=str(self.ports[number]))
        await asyncio.to_thread(self.system.stack.wait_ready, self.url(number), 120)


@pytest.fixture(scope="module")
async def gateways(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateways]:
    folder = tmp_path_factory.mktemp("gateways")
    async with launched(
        folder,
        database.url,
        engines=ONLY_WHISPER,
        recognizer_slots=2,
        callback_allowed_hosts="127.0.0.1",
        api_keys=f"{KEY},{OTHER_KEY}",
        max_jobs_per_key=BURST,
        max_uploads_per_key=BURST,  # a burst is sent at once, by one key
        # A key's jobs beyond the two slots wait in the database; whichever gateway takes a
        # finished job releases the next, so every burst here also crosses gateways that way.
        fair_share_per_key=2,
        events_keepalive_seconds=0.5,
        shutdown_grace_seconds=20,
    ) as system:
        first_port = int(system.base_url.rsplit(":", 1)[1])
        second_port = free_port()
        running = Gateways(system, [first_port, second_port], [system.only("gateway")], "", folder)
        running.processes.append(system.start("gateway", STT_PORT=str(second_port)))
        await asyncio.to_thread(system.stack.wait_ready, running.url(1), 120)
        await system.until_at_work(("gateway",))
        with haproxy(folder, running.ports) as proxy_url:
            running.proxy_url = proxy_url
            yield running


@pytest.fixture
def receiver() -> Iterator[StandIn]:
    with http_stand_in({"received": True}) as stand_in:
        yield stand_in


async def jobs_stored(system: RunningSystem) -> int:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(str(system.settings.mongodb_url))
    try:
        return await client[system.settings.mongodb_database]["jobs"].count_documents({})
    finally:
        await client.close()


async def test_a_job_uploaded_through_one_gateway_is_followed_on_the_other(
    gateways: Gateways, receiver: StandIn, clips: dict[str, Path]
) -> None:
    async with (
        gateways.client(gateways.url(0)) as first,
        gateways.client(gateways.url(1)) as second,
    ):
        job_id = await accepted_job_id(
            first, clips["mp3"], engine=FAST, callback_url=f"{receiver.url}/hook"
        )
        stream = await follow(second, job_id)
        polled = await until_status(second, job_id)
    statuses = [job["status"] for job in stream.statuses]
    assert statuses[-1] == "done", statuses
    assert len(statuses) > 1, statuses  # it saw the job move, not only its end
    assert polled["status"] == "done"
    assert set(media.EXPECTED_WORDS) <= media.words_of(polled["text"])
    # The gateways share one queue of finished jobs: one of them calls back, once.
    await until(lambda: len(receiver.received) >= 1, within=30)
    await asyncio.sleep(2)
    assert [delivery.path for delivery in receiver.received] == ["/hook"]


async def test_restarting_a_gateway_during_a_burst_loses_no_accepted_job(
    gateways: Gateways, clips: dict[str, Path]
) -> None:
    stored_before = await jobs_stored(gateways.system)
    kinds = ("mp3", "wav", "mp4")

    async def one_upload(number: int) -> httpx.Response:
        # A steady stream of uploads, so that some arrive while the gateway stops and starts.
        await asyncio.sleep(number * 0.05)
        return await upload(client, clips[kinds[number % 3]], engine=FAST)

    async with gateways.client(gateways.proxy_url) as client:
        uploads = [asyncio.create_task(one_upload(number)) for number in range(BURST)]
        await asyncio.sleep(0.3)
        await gateways.stop(0)
        await gateways.start(0)
        responses = await asyncio.gather(*uploads)
        accepted = [reply.json()["job_id"] for reply in responses if reply.status_code == 202]
        finished = [await until_status(client, job_id) for job_id in accepted]
    refused = [reply.status_code for reply in responses if reply.status_code != 202]
    # HAProxy sends what the stopping gateway refuses to the other: nothing is refused.
    assert refused == [], refused
    assert [job["status"] for job in finished] == ["done"] * BURST, finished
    assert await jobs_stored(gateways.system) == stored_before + BURST


async def test_a_live_session_keeps_working_while_the_other_gateway_restarts(
    gateways: Gateways, tmp_path: Path
) -> None:
    sentences = tuple(sentence for sentence, _ in SENTENCES)
    first = speech_with_pauses(tmp_path, sentences[:1])
    rest = speech_with_pauses(tmp_path, sentences[1:])
    completed = "conversation.item.input_audio_transcription.completed"
    async with open_session(gateways.url(0), KEY.partition(":")[2]) as connection:
        client = LiveClient(connection)
        job_id = await client.start()
        await client.stream(first, pace=0.5)
        await client.next(completed, 60)
        await gateways.stop(1)
        await gateways.start(1)
        await client.stream(rest, pace=0.5)
        for _ in sentences[1:]:
            await client.next(completed, 60)
    heard = [media.words_of(event["transcript"]) for event in client.of(completed)]
    for words_heard, (_, words) in zip(heard, SENTENCES, strict=True):
        assert set(words) <= words_heard, heard
    async with gateways.client(gateways.url(1)) as second:
        job = await until_status(second, job_id, within=60)
    assert job["status"] == "done", job


async def test_a_keys_job_limit_holds_across_gateways(
    gateways: Gateways, clips: dict[str, Path]
) -> None:
    system = gateways.system
    # Without a transcoder, every job accepted stays under way.
    transcoder = system.only("transcoder")
    os.kill(transcoder.pid, signal.SIGTERM)
    assert await asyncio.to_thread(transcoder.wait, 60) == 0
    system.stack.processes.remove(("transcoder", transcoder))
    try:
        async with (
            gateways.client(gateways.url(0), OTHER_KEY) as first,
            gateways.client(gateways.url(1), OTHER_KEY) as second,
            gateways.client(gateways.proxy_url, OTHER_KEY) as proxied,
        ):
            held = [await accepted_job_id(first, clips["wav"], engine=FAST) for _ in range(BURST)]
            refused = await upload(second, clips["wav"], engine=FAST)
            refused_through_the_proxy = await upload(proxied, clips["wav"], engine=FAST)
    finally:
        system.start("transcoder")
    assert refused.status_code == 429, refused.text
    assert "STT_MAX_JOBS_PER_KEY" in refused.text
    assert refused_through_the_proxy.status_code == 429, refused_through_the_proxy.text
    async with gateways.client(gateways.proxy_url, OTHER_KEY) as client:
        finished = [await until_status(client, job_id) for job_id in held]
    assert [job["status"] for job in finished] == ["done"] * BURST


async def burst_accept_seconds(base_url: str, clip: Path, jobs: int) -> list[float]:
    """How long each of `jobs` simultaneous uploads took to be answered 202; returns once their
    jobs are done, so that the next burst meets idle workers too."""

    async def timed(client: httpx.AsyncClient) -> tuple[str, float]:
        began = time.perf_counter()
        reply = await upload(client, clip, engine=FAST)
        assert reply.status_code == 202, reply.text
        return reply.json()["job_id"], time.perf_counter() - began

    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=60,
        limits=httpx.Limits(max_connections=jobs),
        headers=bearer(KEY),
    ) as client:
        answered = await asyncio.gather(*(timed(client) for _ in range(jobs)))
        for job_id, _ in answered:
            assert (await until_status(client, job_id))["status"] == "done"
    return [seconds for _, seconds in answered]


async def test_accept_latency_of_a_burst_with_one_gateway_and_with_two(
    gateways: Gateways, clips: dict[str, Path]
) -> None:
    """Reports, does not judge: the figures depend on the machine and what else runs on it.
    Both go through HAProxy, so they differ by the gateways behind it alone."""
    one_folder = gateways.folder / "one-gateway"
    one_folder.mkdir(exist_ok=True)
    with haproxy(one_folder, gateways.ports[:1]) as one_gateway:
        alone = await burst_accept_seconds(one_gateway, clips["mp3"], BURST)
    both = await burst_accept_seconds(gateways.proxy_url, clips["mp3"], BURST)
    lines = [
        f"{name}: median {statistics.median(seconds) * 1000:.0f} ms,"
        f" slowest {max(seconds) * 1000:.0f} ms ({BURST} simultaneous uploads)"
        for name, seconds in (("one gateway", alone), ("two gateways", both))
    ]
    report = "\n".join(lines)
    (gateways.folder / "accept-latency.txt").write_text(report + "\n")
    print(f"\naccept latency, through HAProxy:\n{report}")
