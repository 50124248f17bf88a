"""The janitor's parked-message handler behind the real transport: a message parked on the real
RabbitMQ goes through Broker's own acking, retrying and announcing, not a model of them."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest

from janitor.handler import ParkedHandler, subscriptions
from janitor.settings import JanitorSettings
from shared.broker import Broker, Subscription
from shared.events import Event, JobFailed, TranscriptDone, UtteranceReady, UtteranceRecognized
from shared.faults import BrokerUnavailable
from shared.jobs.models import JobStatus, Progress, new_job_id
from shared.jobs.options import JobOptions
from shared.jobs.store import JobStore
from shared.pipeline import noting_announcements
from shared.settings import CommonSettings
from shared.topology import QueueSpec, parking_queue


@pytest.fixture
async def broker(settings: CommonSettings) -> AsyncIterator[Broker]:
    connected = await Broker(settings).connect()
    yield connected
    await connected.stop_consuming(grace_seconds=1)
    await connected.close()


async def a_job(jobs: JobStore, status: JobStatus) -> str:
    job_id = new_job_id()
    await jobs.create(
        job_id, JobOptions(engine="sphinx", language="en"), filename="a.wav", size_bytes=10,
        content_type="audio/wav", settings=CommonSettings(_env_file=None),
    )  # fmt: skip
    await jobs.advance(job_id, status, allowed_from=(JobStatus.QUEUED,), text="")
    return job_id


async def park(broker: Broker, queue: QueueSpec, event: Event) -> str:
    """Put `event` in the parking queue of `queue`, as RabbitMQ does when it gives up on it."""
    parked = parking_queue(queue.name)
    body = event.model_dump_json().encode()
    await broker.channel.default_exchange.publish(aio_pika.Message(body), routing_key=parked)
    return parked


def parked_spec(broker: Broker, name: str) -> QueueSpec:
    return next(spec for spec in broker.topology.parked if spec.name == name)


async def until(check: Callable[[], Awaitable[bool]], within: float = 20) -> None:
    """Poll `check` until it holds; fails the test after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


def depth_is(broker: Broker, queue: str, expected: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await broker.queued_messages(queue) == expected

    return check


async def test_a_parked_job_is_failed_and_announced_though_the_first_announcement_fails(
    broker: Broker, jobs: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await a_job(jobs, JobStatus.RECOGNIZING)
    publish = broker.publish
    refused: list[Event] = []

    async def away_once(event: Event) -> None:
        if isinstance(event, JobFailed) and not refused:
            refused.append(event)
            raise BrokerUnavailable("publishing job.failed: the broker is away (once)")
        await publish(event)

    monkeypatch.setattr(broker, "publish", away_once)
    recognizer = broker.topology.recognizers["sphinx"]
    parked = await park(broker, recognizer, TranscriptDone(job_id=job_id))
    handler = ParkedHandler(jobs, announces=True)
    spec = parked_spec(broker, parked)
    await broker.consume(Subscription(spec, Event, handler, 1, noting_announcements(jobs)))

    async def announced() -> bool:
        job = await jobs.get(job_id)
        return job is not None and job.announced_at is not None

    await until(announced)
    await until(depth_is(broker, broker.topology.callbacks.name, 1))
    job = await jobs.get(job_id)
    assert job is not None
    assert (job.status, job.error and job.error.code) == (JobStatus.FAILED, "processing_error")
    assert len(refused) == 1
    assert await broker.queued_messages(broker.topology.callbacks.name) == 1
    assert await broker.queued_messages(parked) == 0


async def test_a_parked_message_of_a_finished_job_queue_is_dropped_unannounced(
    broker: Broker, jobs: JobStore
) -> None:
    job_id = await a_job(jobs, JobStatus.DONE)
    parked = await park(broker, broker.topology.callbacks, TranscriptDone(job_id=job_id))
    handler = ParkedHandler(jobs, announces=False)
    spec = parked_spec(broker, parked)
    await broker.consume(Subscription(spec, Event, handler, 1, noting_announcements(jobs)))
    await until(depth_is(broker, parked, 0))
    job = await jobs.get(job_id)
    assert job is not None
    assert job.status is JobStatus.DONE
    assert await broker.queued_messages(broker.topology.callbacks.name) == 0
    assert job.announced_at is None


async def a_live_session(jobs: JobStore, utterances: int) -> str:
    """A live session's job under way, with `utterances` handed to the recognizers."""
    job_id = await a_job(jobs, JobStatus.RECOGNIZING)
    await jobs.advance(
        job_id,
        JobStatus.RECOGNIZING,
        allowed_from=(JobStatus.RECOGNIZING,),
        live=True,
        progress=Progress(pieces_total=0, audio_seconds_total=0.0).model_dump(),
    )
    for _ in range(utterances):
        await jobs.add_live_piece(job_id, 1.0)
    return job_id


async def test_a_parked_utterance_fails_alone_and_its_session_goes_on(
    broker: Broker, jobs: JobStore, settings: CommonSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await a_live_session(jobs, utterances=2)
    published: list[Event] = []
    publish = broker.publish

    async def recorded(event: Event) -> None:
        published.append(event)
        await publish(event)

    monkeypatch.setattr(broker, "publish", recorded)
    janitor_settings = JanitorSettings.model_validate(
        {**settings.model_dump(), "sweep_interval_seconds": 3600}
    )
    engine, live_queue = next(iter(broker.topology.live.items()))
    utterance = UtteranceReady(
        job_id=job_id, engine=engine, piece_index=0, offset_seconds=0.0, piece_seconds=1.0
    )
    parked = await park(broker, live_queue, utterance)
    async with subscriptions(janitor_settings, broker, jobs, lambda _reason: None) as janitor:
        [taking_parked] = [each for each in janitor if each.queue.name == parked]
        await broker.consume(taking_parked)

        async def told_the_session() -> bool:
            return any(isinstance(event, UtteranceRecognized) for event in published)

        await until(told_the_session)

    job = await jobs.get(job_id)
    assert job is not None
    assert job.status is JobStatus.RECOGNIZING, job.error
    assert job.progress is not None
    assert (job.progress.pieces_done, job.progress.pieces_total) == (1, 2)
    [told] = [event for event in published if isinstance(event, UtteranceRecognized)]
    assert told.piece_index == 0
    assert told.error is not None
    assert told.error.code == "processing_error"
    assert not [event for event in published if isinstance(event, JobFailed)]
