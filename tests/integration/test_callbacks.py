"""Callbacks through the running services: a finished job is POSTed, signed, to the URL its
upload named; a receiver that is away is tried again, one that refuses is not."""

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.stack import free_port
from shared.broker import Broker
from shared.events import TranscriptDone
from tests import media
from tests.integration.api import accepted_job_id, until_status, upload
from tests.integration.conftest import ONLY_WHISPER, RunningSystem, stack_fixture
from tests.stand_in import StandIn, http_stand_in

SECRET = "callback-s3cret"
RETRY_DELAYS = (0.3, 0.6)
ATTEMPTS = 1 + len(RETRY_DELAYS)


system = stack_fixture(
    "callbacks",
    callback_secret=SECRET,
    callback_allowed_hosts="localhost",
    engines=ONLY_WHISPER,
    retry_delays_seconds=RETRY_DELAYS,
    recognizer_slots=1,
)


@pytest.fixture
def receiver() -> Iterator[StandIn]:
    """A receiver on loopback, named by the one host the system may call there."""
    with http_stand_in({"received": True}) as stand_in:
        stand_in.url = stand_in.url.replace("127.0.0.1", "localhost")
        yield stand_in


async def until_callback_settled(
    client: httpx.AsyncClient, job_id: str, within: float = 60
) -> dict[str, Any]:
    """The job once its callback was delivered or given up."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        job: dict[str, Any] = (await client.get(f"/v1/jobs/{job_id}")).json()
        callback = job["callback"]
        if callback["delivered_at"] is not None or callback["gave_up"]:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"the callback of job {job_id} was not settled within {within} s")


async def announce_again(system: RunningSystem, job_id: str) -> None:
    """Publish the job's transcript.done once more, as a redelivery upstream may, and wait until
    the gateway has taken it."""
    broker = await Broker(system.settings).connect()
    try:
        await broker.publish(TranscriptDone(job_id=job_id))
    finally:
        await broker.close()
    await until_nothing_pending(system)


async def until_nothing_pending(system: RunningSystem, within: float = 30) -> None:
    """Until no callback waits in the gateway's queue or a retry queue: from then on no further
    attempt can come."""
    broker = await Broker(system.settings).connect()
    topology = broker.topology
    queues = [topology.callbacks.name, *(spec.name for spec in topology.retries)]
    try:
        async with asyncio.timeout(within):
            while True:
                if not any([await broker.queued_messages(queue) for queue in queues]):
                    return
                await asyncio.sleep(0.05)
    finally:
        await broker.close()


async def test_a_finished_job_is_posted_signed_to_its_callback_url(
    system: RunningSystem, receiver: StandIn, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        job_id = await accepted_job_id(client, clips["mp4"], callback_url=receiver.url + "/hook")
        job = await until_callback_settled(client, job_id)
    await announce_again(system, job_id)
    [sent] = receiver.received
    assert sent.path == "/hook"
    assert sent.headers["X-STT-Job-Id"] == job_id
    signed_at, _, digest = sent.headers["X-STT-Signature"].removeprefix("t=").partition(",v1=")
    signed = f"{signed_at}.".encode() + sent.body
    assert digest == hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert abs(time.time() - int(signed_at)) < 120
    posted = json.loads(sent.body)
    assert (posted["job_id"], posted["status"]) == (job_id, "done")
    assert set(media.EXPECTED_WORDS) <= media.words_of(posted["text"])
    assert job["callback"]["attempts"] == 1
    assert job["callback"]["error"] is None


async def test_a_failed_job_is_posted_too(
    system: RunningSystem, receiver: StandIn, tmp_path: Path
) -> None:
    silent_video = media.video_without_audio(tmp_path / "silent.mp4")
    async with system.client() as client:
        job_id = await accepted_job_id(client, silent_video, callback_url=receiver.url)
        job = await until_callback_settled(client, job_id)
    assert job["callback"]["delivered_at"] is not None
    [sent] = receiver.received
    posted = json.loads(sent.body)
    assert posted["status"] == "failed"
    assert posted["error"]["code"] == "no_audio"


async def test_a_receiver_that_is_away_for_a_while_gets_the_callback_later(
    system: RunningSystem, receiver: StandIn, clips: dict[str, Path]
) -> None:
    receiver.failures[:] = [503, 429]
    async with system.client() as client:
        job_id = await accepted_job_id(client, clips["wav"], callback_url=receiver.url)
        job = await until_callback_settled(client, job_id)
    assert job["callback"]["delivered_at"] is not None
    assert job["callback"]["attempts"] == 3
    assert len(receiver.received) == 3
    assert {json.loads(sent.body)["job_id"] for sent in receiver.received} == {job_id}


async def test_a_receiver_that_refuses_is_not_asked_again(
    system: RunningSystem, receiver: StandIn, clips: dict[str, Path]
) -> None:
    receiver.failures[:] = [410]
    async with system.client() as client:
        job_id = await accepted_job_id(client, clips["wav"], callback_url=receiver.url)
        job = await until_callback_settled(client, job_id)
        await until_nothing_pending(system)
    await announce_again(system, job_id)
    assert job["status"] == "done"
    assert job["callback"]["gave_up"]
    assert job["callback"]["delivered_at"] is None
    assert "410" in job["callback"]["error"]
    assert len(receiver.received) == 1


@pytest.mark.parametrize("away", ["answers 503", "unreachable"])
async def test_a_receiver_away_through_every_retry_is_given_up(
    system: RunningSystem, receiver: StandIn, clips: dict[str, Path], away: str
) -> None:
    receiver.failures[:] = [503] * ATTEMPTS
    url = receiver.url if away == "answers 503" else f"http://localhost:{free_port()}/"
    async with system.client() as client:
        job_id = await accepted_job_id(client, clips["wav"], callback_url=url)
        job = await until_callback_settled(client, job_id)
        await until_nothing_pending(system)
        again = (await client.get(f"/v1/jobs/{job_id}")).json()
    assert job["status"] == "done"
    assert job["callback"]["gave_up"]
    assert job["callback"]["attempts"] == ATTEMPTS
    assert again["callback"]["attempts"] == ATTEMPTS
    assert ("503" if away == "answers 503" else "could not connect") in job["callback"]["error"]


async def test_a_callback_into_the_network_is_refused_and_no_connection_made(
    system: RunningSystem, receiver: StandIn, clips: dict[str, Path]
) -> None:
    """The same listener, reached by its address instead of the allowed name."""
    inside = receiver.url.replace("localhost", "127.0.0.1")
    async with system.client() as client:
        job_id = await accepted_job_id(client, clips["wav"], callback_url=inside)
        job = await until_callback_settled(client, job_id)
    assert receiver.connections == 0
    assert job["callback"]["gave_up"]
    assert job["callback"]["attempts"] == 1
    assert job["callback"]["error"].startswith("refused: 127.0.0.1 is not a public address")


async def test_a_callback_url_with_credentials_is_refused_at_upload(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        refused = await upload(
            client, clips["wav"], callback_url="http://guest:guest@rabbitmq:15672/api/queues"
        )
    assert refused.status_code == 422
    assert "user name or password" in refused.json()["detail"]


@pytest.mark.parametrize(
    "callback_url",
    [
        "ftp://example.com/hook",
        "not a url",
        "http://",
        "http:/example.com/hook",
        "https://example.com/" + "x" * 2100,
    ],
)
async def test_a_callback_url_that_is_not_http_is_refused_at_upload(
    system: RunningSystem, clips: dict[str, Path], callback_url: str
) -> None:
    async with system.client() as client:
        refused = await upload(client, clips["wav"], callback_url=callback_url)
    assert refused.status_code == 422
    assert "callback_url must be an absolute http or https URL" in refused.json()["detail"]


async def test_a_job_without_a_callback_url_has_no_callback(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        job = await until_status(client, await accepted_job_id(client, clips["wav"]))
    assert job["callback"] is None
