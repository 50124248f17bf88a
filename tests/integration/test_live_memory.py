"""The gateway's memory under live sessions that send a great deal of audio at once, without turn
detection, on a real gateway (no recognizer: what is handed out waits in its queue). The pace
is lifted here, so that every second of audio is taken and cut: the memory bound is the cutting
and the buffers', not the pace's (test_live_limits has the pace)."""

import asyncio
import contextlib
import json
import subprocess

import psutil

from tests.integration.conftest import RunningSystem, stack_fixture
from tests.live import LiveClient, append, open_session, transcription_session

MIB = 1024 * 1024
MESSAGES = 20
MESSAGE_SECONDS = 132  # 20 of them: 44 minutes


gateway = stack_fixture(
    "live-memory",
    services=("gateway",),
    live_burst_seconds=MESSAGES * MESSAGE_SECONDS,
    live_max_pending_utterances=1000,
)


def resident_bytes(process: subprocess.Popen[bytes]) -> int:
    return int(psutil.Process(process.pid).memory_info().rss)


async def session_sent_44_minutes(gateway: RunningSystem, messages: int = MESSAGES) -> int:
    """One session without turn detection sent `messages` of 132 s at 24 kHz, as fast as the
    socket takes them; the most the gateway's resident memory grew by meanwhile, from where it
    stood as the session began."""
    process = gateway.only("gateway")
    message = json.dumps(append(bytes(2 * 24000 * MESSAGE_SECONDS)))
    start = resident_bytes(process)
    peak = start

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, resident_bytes(process))
            await asyncio.sleep(0.02)

    watching = asyncio.create_task(watch())
    try:
        async with open_session(gateway.base_url) as connection:
            client = LiveClient(connection)
            await client.next("session.created")
            await client.send(transcription_session(vad=False))
            await client.next("session.updated")
            for _ in range(messages):
                await connection.send(message)
            await client.send({"type": "no.such.event"})  # answered once all before it are in
            async with asyncio.timeout(60):
                # Told on the way that no text comes back (no recognizer runs).
                while (await client.next("error"))["error"]["code"] != "unknown_event":
                    pass
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    return peak - start


async def test_sessions_sent_44_minutes_at_once_leave_the_gateways_memory_bounded(
    gateway: RunningSystem,
) -> None:
    process = gateway.only("gateway")
    started_at = resident_bytes(process)
    grown = await session_sent_44_minutes(gateway)
    assert grown < 100 * MIB, f"{grown / MIB:.0f} MiB"
    for _ in range(9):
        assert await session_sent_44_minutes(gateway) < 100 * MIB
    settled = resident_bytes(process) - started_at
    for _ in range(20):  # as the last session's end is recorded
        if settled < 20 * MIB:
            break
        await asyncio.sleep(0.5)
        settled = resident_bytes(process) - started_at
    assert settled < 20 * MIB, f"{settled / MIB:.0f} MiB"
