"""Hostile and greedy live clients against a real gateway (no recognizer: what is handed out
stays with the recognizers, as if they were all busy): audio sent faster than its pace, keys over
their limits on one gateway or two, the fair share, and the gateway shutting down mid-session."""

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from scripts.stack import free_port
from shared.jobs.store import connect_store
from tests.integration.conftest import RunningSystem, stack_fixture
from tests.live import LiveClient, append, open_session, transcription_session

# One key per test: what a test leaves under way (no recognizer finishes it) counts for its key.
KEYS = ("flood", "junk", "jobs", "twice", "fair", "leaving")
JOBS_PER_KEY = 2
RATE = 16000
MIB = 1024 * 1024


gateway = stack_fixture(
    "live-limits",
    services=("gateway",),
    api_keys=",".join(f"{key}:key-{key}" for key in KEYS),
    max_jobs_per_key=JOBS_PER_KEY,
    max_live_sessions_per_key=JOBS_PER_KEY + 1,
    fair_share_per_key=1,
)


async def started(connection: object, vad: bool = False) -> tuple[LiveClient, str]:
    """The session's client, set to 16 kHz, and its job id."""
    client = LiveClient(connection)  # type: ignore[arg-type]
    return client, await client.start(transcription_session(rate=RATE, vad=vad), within=10)


def seconds_of_silence(seconds: float) -> bytes:
    return bytes(2 * round(RATE * seconds))


async def refused(connection: object) -> str:
    """The message of a `session_limit_reached` refusal, once the socket closed with 1013."""
    client = LiveClient(connection)  # type: ignore[arg-type]
    error = (await client.next("error", 10))["error"]
    assert error["code"] == "session_limit_reached", error
    with pytest.raises(ConnectionClosed) as closed:
        await client.receive()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    return str(error["message"])


async def test_audio_sent_faster_than_its_pace_is_dropped_and_the_session_told(
    gateway: RunningSystem,
) -> None:
    async with open_session(gateway.base_url, "key-flood") as connection:
        client, job_id = await started(connection)
        await client.send(append(seconds_of_silence(20)) | {"event_id": "flood-1"})
        error = (await client.next("error", 10))["error"]
        assert (error["code"], error["event_id"]) == ("input_audio_too_fast", "flood-1")
        assert "STT_LIVE_MAX_PACE" in error["message"]
        sent_more = time.monotonic()
        await client.send(append(seconds_of_silence(0.1)))
        await client.send({"type": "input_audio_buffer.commit"})
        await client.next("input_audio_buffer.committed", 20)
        # Read once the pace has caught up with the 20 s sent, the 10 s dropped included.
        assert time.monotonic() - sent_more > 4
    assert not [event for event in client.of("error") if event is not client.of("error")[0]]

    job = await ended_session(gateway, "key-flood", job_id)
    # The burst (10 s), the little the pace added while the message came, and the last 0.1 s.
    assert 10 <= job["duration_seconds"] < 11, job


async def test_large_messages_of_any_kind_are_read_no_faster_than_audio(
    gateway: RunningSystem,
) -> None:
    async with open_session(gateway.base_url, "key-junk") as connection:
        client, _ = await started(connection)
        # 1 MiB of text counts as 24.6 s of 16 kHz audio in base64: 14.6 s past the burst.
        await client.send({"type": "no.such.event", "junk": "A" * MIB})
        assert (await client.next("error", 10))["error"]["code"] == "unknown_event"
        sent_more = time.monotonic()
        await client.send({"type": "no.such.event"})
        assert (await client.next("error", 20))["error"]["code"] == "unknown_event"
        assert time.monotonic() - sent_more > 3


async def ended_session(gateway: RunningSystem, key: str, job_id: str) -> dict[str, Any]:
    """The session's job once the gateway recorded the session's end (its audio's length)."""
    async with gateway.client() as http:
        http.headers["Authorization"] = f"Bearer {key}"
        for _ in range(100):
            job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
            if job["duration_seconds"] is not None:
                return job
            await asyncio.sleep(0.1)
    raise AssertionError(f"the session of job {job_id} did not end in 10 s")


async def test_an_open_session_counts_as_a_job_of_its_key(gateway: RunningSystem) -> None:
    async with (
        open_session(gateway.base_url, "key-jobs") as first,
        open_session(gateway.base_url, "key-jobs") as second,
    ):
        await started(first)
        await started(second)
        async with open_session(gateway.base_url, "key-jobs") as third:
            assert "STT_MAX_JOBS_PER_KEY" in await refused(third)


async def test_sessions_of_a_key_are_counted_over_every_gateway(
    gateway: RunningSystem,
) -> None:
    port = free_port()
    other = gateway.start("gateway", STT_PORT=str(port), STT_MAX_LIVE_SESSIONS_PER_KEY="1")
    other_url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(gateway.stack.wait_ready, other_url, 60)
        async with open_session(gateway.base_url, "key-twice") as first:
            _client, first_job = await started(first)
            async with open_session(other_url, "key-twice") as second:
                assert "STT_MAX_LIVE_SESSIONS_PER_KEY" in await refused(second)
        # Once the first session has ended (its gateway records it as it closes), the other
        # gateway counts it no more.
        await ended_session(gateway, "key-twice", first_job)
        async with open_session(other_url, "key-twice") as third:
            await started(third)
    finally:
        other.send_signal(signal.SIGTERM)
        await asyncio.to_thread(other.wait, 30)


async def test_a_session_hands_out_utterances_within_its_keys_fair_share(
    gateway: RunningSystem,
) -> None:
    async with open_session(gateway.base_url, "key-fair") as connection:
        client, _ = await started(connection)
        await client.send(append(seconds_of_silence(1)))
        await client.send({"type": "input_audio_buffer.commit"})
        await client.next("input_audio_buffer.committed", 10)
        # The key's share is one: the first utterance is with the recognizers (none runs).
        await client.send(append(seconds_of_silence(1)))
        await client.send({"type": "input_audio_buffer.commit"})
        async with asyncio.timeout(10):
            # The session may be told its first utterance's text is late first.
            while (error := (await client.next("error"))["error"])["code"] != "fair_share_busy":
                assert error["code"] == "recognition_behind", error
        assert error["type"] == "server_busy"
        with pytest.raises(TimeoutError):
            await client.next("input_audio_buffer.committed", 2)


async def test_a_gateway_shutting_down_hands_out_the_utterance_under_way_first(
    gateway: RunningSystem, tmp_path: Path
) -> None:
    """Last in this file: it stops the gateway."""
    async with open_session(gateway.base_url, "key-leaving") as connection:
        client, job_id = await started(connection)
        await client.send(append(seconds_of_silence(2)))
        await client.send({"type": "no.such.event"})  # its answer: the audio before it is in
        assert (await client.next("error", 10))["error"]["code"] == "unknown_event"
        gateway.only("gateway").send_signal(signal.SIGTERM)
        committed = await client.next("input_audio_buffer.committed", 20)
        with pytest.raises(ConnectionClosed) as closed:
            await client.next("no event of this kind comes", 20)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012
    client_db, jobs = connect_store(
        str(gateway.settings.mongodb_url), gateway.settings.mongodb_database
    )
    try:
        job = await jobs.get(job_id)
    finally:
        await client_db.close()
    assert job is not None
    assert job.progress is not None
    assert job.progress.pieces_total == 1
    assert job.live_ended_at is not None
    assert committed["item_id"].endswith("00000")
