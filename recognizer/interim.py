"""Interim passes of live sessions: the audio of an utterance still under way, recognized so the
session can show words before the utterance ends. Nothing here touches the job: the audio comes
in the message and goes to a temporary file, the text goes back in an event, and a pass that
fails or comes too late is simply dropped (the gateway sends another)."""

import asyncio
import base64
import contextlib
import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from recognizer.pool import Request, SlotPool
from shared.broker import Broker, Publish, Subscription
from shared.events import INTERIM_EXPIRY_SECONDS, InterimReady, InterimRecognized
from shared.faults import BrokerUnavailable
from shared.wav import write_wav

log = logging.getLogger(__name__)

RATE = 16000
# An interim pass is worth nothing after a few seconds; a slot stuck longer on one is replaced.
INTERIM_TIMEOUT_SECONDS = 20.0


def _write_wav(folder: str | None, audio: str) -> Path:
    target = Path(folder or tempfile.gettempdir()) / f"interim-{uuid.uuid4().hex}.wav"
    write_wav(target, base64.b64decode(audio), RATE)
    return target


class InterimHandler:
    def __init__(self, pool: SlotPool, publish: Publish, folder: str | None = None) -> None:
        self._pool = pool
        self._publish = publish
        self._folder = folder

    async def __call__(self, event: InterimReady) -> None:
        waited = time.time() - event.sent_at
        if waited > INTERIM_EXPIRY_SECONDS:
            log.info("job %s: interim pass %d dropped, %.1f s old", event.job_id,
                     event.pass_number, waited)  # fmt: skip
            return
        log.info("job %s: interim pass %d of utterance %d", event.job_id, event.pass_number,
                 event.utterance_index)  # fmt: skip
        started = time.perf_counter()
        try:
            audio = await asyncio.to_thread(_write_wav, self._folder, event.audio)
            try:
                async with self._pool.reserve() as slot:
                    request = Request(audio, event.options)
                    transcript = await slot.transcribe(request, INTERIM_TIMEOUT_SECONDS)
            finally:
                await asyncio.to_thread(audio.unlink, missing_ok=True)
        except Exception as error:
            # Never retried, never parked: the session sends the next pass soon.
            log.warning("job %s: interim pass %d failed: %r", event.job_id, event.pass_number,
                        error)  # fmt: skip
            return
        engine_seconds = time.perf_counter() - started
        log.info(
            "job %s: interim pass %d recognized in %.2f s", event.job_id, event.pass_number,
            engine_seconds, extra={"duration_seconds": engine_seconds},
        )  # fmt: skip
        with contextlib.suppress(BrokerUnavailable):  # the session has gone: nobody to tell
            await self._publish(
                InterimRecognized(
                    job_id=event.job_id,
                    utterance_index=event.utterance_index,
                    pass_number=event.pass_number,
                    text=transcript.text,
                )
            )


def interim_subscriptions(
    engines: tuple[str, ...], broker: Broker, pool: SlotPool
) -> tuple[Subscription[Any], ...]:
    """The interim queues of the recognizer's engines, to pull after the live utterances and
    before file work."""
    handler = InterimHandler(pool, broker.publish)
    return tuple(
        Subscription(broker.topology.interim[engine], InterimReady, handler) for engine in engines
    )
