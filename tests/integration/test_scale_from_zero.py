"""Scale from zero on the real stack: with no recognizer of its engine ever started in this
namespace, a job for an engine the deployment declares is accepted and waits in the engine's
queue (the depth KEDA reads); the recognizer that then starts does it."""

import asyncio
import time
from pathlib import Path

import httpx

from tests import media
from tests.integration.api import accepted_job_id, until_status
from tests.integration.conftest import FAST, ONLY_WHISPER, launched


async def queued_in(client: httpx.AsyncClient, queue: str, within: float = 30) -> float:
    """The depth of `queue` as the gateway's /metrics reads it from the broker, once not 0."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for line in (await client.get("/metrics")).text.splitlines():
            if line.startswith(f'stt_queue_messages{{queue="{queue}"}}'):
                depth = float(line.rsplit(" ", 1)[1])
                if depth:
                    return depth
        await asyncio.sleep(0.2)
    raise AssertionError(f"nothing waited in {queue} within {within} s")


async def test_a_declared_engine_no_recognizer_ever_served_waits_then_is_done(
    mongodb_url: str, tmp_path: Path, clips: dict[str, Path]
) -> None:
    without_recognizer = ("gateway", "transcoder", "janitor")
    async with (
        launched(
            tmp_path, mongodb_url, without_recognizer, engines=ONLY_WHISPER, recognizer_slots=1
        ) as running,
        running.client() as client,
    ):
        job_id = await accepted_job_id(client, clips["wav"], engine=FAST)
        waiting = await until_status(client, job_id, ("transcoding",))
        queue = f"{running.settings.namespace}.audio.ready.{FAST}--recognizer"
        depth = await queued_in(client, queue)
        running.start("recognizer")
        job = await until_status(client, job_id, within=120)
    assert waiting["status"] == "transcoding"
    assert depth == 1
    assert job["status"] == "done", job
    assert set(media.EXPECTED_WORDS) <= media.words_of(job["text"])
