"""The transport on the real RabbitMQ: confirms, acks, parking, the delay queue, graceful stop."""

import asyncio
import time
from collections.abc import AsyncIterator

import aio_pika
import pytest
from pydantic import AmqpDsn
from pymongo.errors import ServerSelectionTimeoutError

from scripts.stack import free_port
from shared.broker import Broker, Pull, Subscription
from shared.events import AudioReady, Event, InterimReady, MediaUploaded, TranscriptDone
from shared.jobs.options import JobOptions
from shared.messages import gave_up_retrying, published_at, retries_of
from shared.settings import CommonSettings
from shared.topology import INTERIM_QUEUE_LENGTH, parking_queue
from tests.integration.api import until

# Job ids of the messages these tests send (events carry well-formed job ids only).
FIRST = "1" * 32
POISON = "2" * 32
FINISHED = "3" * 32
QUICK = "4" * 32
SLOW = "5" * 32
FLAKY = "6" * 32
PATIENT = "7" * 32


@pytest.fixture
async def broker(settings: CommonSettings) -> AsyncIterator[Broker]:
    connected = await Broker(settings).connect()
    yield connected
    await connected.close()


async def take(broker: Broker, queue_name: str, within: float = 5) -> aio_pika.IncomingMessage:
    """The next message on a queue, taken off it; fails the test if none comes in time."""
    queue = await broker.channel.get_queue(queue_name, ensure=False)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            return message  # type: ignore[return-value]
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing arrived on {queue_name} within {within} s")


def death_reason(message: aio_pika.IncomingMessage) -> object:
    """Why RabbitMQ dead-lettered the message, as it wrote it."""
    deaths = (message.headers or {})["x-death"]
    assert isinstance(deaths, list)
    first = deaths[0]
    assert isinstance(first, dict)
    return first["reason"]


async def depth(broker: Broker, queue_name: str) -> int:
    return await broker.queued_messages(queue_name)


async def test_a_handled_event_is_acked_and_its_successor_routed(broker: Broker) -> None:
    topology = broker.topology
    handled: list[str] = []

    async def handler(event: MediaUploaded) -> Event:
        handled.append(event.job_id)
        return AudioReady(job_id=event.job_id, engine="sphinx", duration_seconds=1.5)

    await broker.consume(Subscription(topology.transcoder, MediaUploaded, handler, prefetch=1))
    await broker.publish(MediaUploaded(job_id=FIRST))
    successor = await take(broker, topology.recognizers["sphinx"].name)
    assert AudioReady.model_validate_json(successor.body) == AudioReady(
        job_id=FIRST, engine="sphinx", duration_seconds=1.5
    )
    assert await depth(broker, topology.recognizers["faster-whisper"].name) == 0
    assert successor.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert handled == [FIRST]
    await broker.stop_consuming(grace_seconds=5)
    assert await depth(broker, topology.transcoder.name) == 0


async def test_a_message_that_keeps_failing_is_parked_after_the_delivery_limit(
    broker: Broker, settings: CommonSettings
) -> None:
    spec = broker.topology.transcoder
    attempts = 0

    async def crashing(_event: MediaUploaded) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("boom")

    await broker.consume(Subscription(spec, MediaUploaded, crashing, prefetch=1))
    await broker.publish(MediaUploaded(job_id=POISON))
    parked = await take(broker, parking_queue(spec.name))
    assert MediaUploaded.model_validate_json(parked.body).job_id == POISON
    assert attempts == settings.delivery_limit + 1
    assert death_reason(parked) == "delivery_limit"
    assert not gave_up_retrying(parked)


async def test_a_malformed_message_is_parked_without_reaching_the_handler(broker: Broker) -> None:
    spec = broker.topology.transcoder
    called = False

    async def handler(_event: MediaUploaded) -> None:
        nonlocal called
        called = True

    await broker.consume(Subscription(spec, MediaUploaded, handler, prefetch=1))
    await broker.exchange.publish(
        aio_pika.Message(b'{"no": "job id"}'), routing_key=MediaUploaded.routing_key
    )
    parked = await take(broker, parking_queue(spec.name))
    assert parked.body == b'{"no": "job id"}'
    assert not called


async def test_finished_jobs_reach_the_janitor_only_after_the_cleanup_delay(
    broker: Broker, settings: CommonSettings
) -> None:
    published = time.monotonic()
    await broker.publish(TranscriptDone(job_id=FINISHED))
    assert await depth(broker, broker.topology.janitor.name) == 0
    message = await take(broker, broker.topology.janitor.name, within=10)
    waited = time.monotonic() - published
    assert Event.model_validate_json(message.body).job_id == FINISHED
    assert settings.cleanup_delay_seconds - 0.1 <= waited <= settings.cleanup_delay_seconds + 1.5


async def test_stopping_waits_for_work_in_hand_and_hands_back_what_overruns(
    broker: Broker,
) -> None:
    spec = broker.topology.transcoder
    started: list[str] = []
    finished: list[str] = []

    async def handler(event: MediaUploaded) -> None:
        started.append(event.job_id)
        await asyncio.sleep(0.3 if event.job_id == QUICK else 30)  # the work in hand
        finished.append(event.job_id)

    await broker.consume(Subscription(spec, MediaUploaded, handler, prefetch=2))
    await broker.publish(MediaUploaded(job_id=QUICK))
    await broker.publish(MediaUploaded(job_id=SLOW))
    await until(lambda: len(started) == 2)
    await broker.stop_consuming(grace_seconds=1)
    assert finished == [QUICK]
    handed_back = await take(broker, spec.name)
    assert MediaUploaded.model_validate_json(handed_back.body).job_id == SLOW
    assert handed_back.redelivered


async def test_a_transient_failure_is_retried_after_a_delay(
    broker: Broker, settings: CommonSettings
) -> None:
    spec = broker.topology.transcoder
    seen: list[float] = []

    async def flaky(event: MediaUploaded) -> None:
        seen.append(time.monotonic())
        if len(seen) < 3:
            raise ServerSelectionTimeoutError("database away")

    await broker.consume(Subscription(spec, MediaUploaded, flaky, prefetch=1))
    await broker.publish(MediaUploaded(job_id=FLAKY))
    deadline = time.monotonic() + 10
    while len(seen) < 3:
        assert time.monotonic() < deadline, f"only {len(seen)} attempts"
        await asyncio.sleep(0.05)
    first, second = settings.retry_delays_seconds[:2]
    assert seen[1] - seen[0] >= first - 0.05
    assert seen[2] - seen[1] >= second - 0.05
    await broker.stop_consuming(grace_seconds=5)
    assert await depth(broker, spec.name) == 0
    assert await depth(broker, parking_queue(spec.name)) == 0


async def test_a_message_is_parked_once_its_retries_run_out(
    broker: Broker, settings: CommonSettings
) -> None:
    spec = broker.topology.transcoder
    attempts = 0

    async def always_away(_event: MediaUploaded) -> None:
        nonlocal attempts
        attempts += 1
        raise ServerSelectionTimeoutError("database away")

    await broker.consume(Subscription(spec, MediaUploaded, always_away, prefetch=1))
    await broker.publish(MediaUploaded(job_id=PATIENT))
    parked = await take(broker, parking_queue(spec.name), within=10)
    assert attempts == len(settings.retry_delays_seconds) + 1
    assert retries_of(parked) == len(settings.retry_delays_seconds)
    assert death_reason(parked) == "rejected"
    assert gave_up_retrying(parked)


async def test_pulled_queues_hold_no_more_than_the_limit_together_and_take_the_first_first(
    broker: Broker,
) -> None:
    whole, pieces = broker.topology.recognizers["sphinx"], broker.topology.pieces["sphinx"]
    release = asyncio.Event()
    taken: list[str] = []

    async def handler(event: AudioReady) -> None:
        taken.append(event.job_id)
        await release.wait()

    subscriptions = tuple(Subscription(q, AudioReady, handler) for q in (whole, pieces))
    await broker.pull(Pull(subscriptions, limit=lambda: 1))
    await broker.publish(
        AudioReady(job_id=FIRST, engine="sphinx", duration_seconds=60, piece_index=0, piece_count=2)
    )
    await until(lambda: taken == [FIRST])
    await broker.publish(AudioReady(job_id=QUICK, engine="sphinx", duration_seconds=1))
    await broker.publish(
        AudioReady(job_id=SLOW, engine="sphinx", duration_seconds=60, piece_index=1, piece_count=2)
    )
    await asyncio.sleep(1.5)  # past the hint and the periodic look: nothing more is taken
    held_back = [await depth(broker, whole.name), await depth(broker, pieces.name)]
    release.set()
    await until(lambda: len(taken) == 3)
    await broker.stop_consuming(grace_seconds=5)
    assert held_back == [1, 1]
    assert taken == [FIRST, QUICK, SLOW]
    assert [await depth(broker, whole.name), await depth(broker, pieces.name)] == [0, 0]


async def test_interim_passes_expire_after_a_second_and_the_oldest_go_when_too_many_wait(
    broker: Broker,
) -> None:
    queue = broker.topology.interim["sphinx"].name
    sent = INTERIM_QUEUE_LENGTH + 44
    await asyncio.gather(
        *(
            broker.publish(
                InterimReady(
                    job_id=FIRST,
                    options=JobOptions(engine="sphinx", language="en"),
                    utterance_index=0,
                    pass_number=number,
                    sent_at=time.time(),
                    audio="",
                )
            )
            for number in range(sent)
        )
    )
    waiting = await depth(broker, queue)
    oldest = InterimReady.model_validate_json((await take(broker, queue)).body)
    assert 0 < waiting <= INTERIM_QUEUE_LENGTH
    assert oldest.pass_number >= sent - INTERIM_QUEUE_LENGTH
    deadline = time.monotonic() + 5
    while await depth(broker, queue):  # nobody takes them
        assert time.monotonic() < deadline, "interim passes outlived their time"
        await asyncio.sleep(0.05)


async def test_a_message_says_when_it_was_published_to_the_millisecond(broker: Broker) -> None:
    # AMQP carries a float header in 32 bits: a time of day in seconds came back up to a
    # minute off, which misordered the recognizers' oldest-first rule and the wait metric.
    before = time.time()
    await broker.publish(MediaUploaded(job_id=FIRST))
    after = time.time()
    message = await take(broker, broker.topology.transcoder.name)
    published = published_at(message)
    assert published is not None
    assert before - 0.001 <= published <= after + 0.001


async def test_pulling_that_ends_by_an_error_says_so_and_tells_the_worker(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    asked = 0

    def limit() -> int:
        nonlocal asked
        asked += 1
        if asked > 2:
            raise ZeroDivisionError("a bug in the limit")
        return 1

    async def handler(_event: AudioReady) -> None:
        return None

    told: list[str] = []
    subscription = Subscription(broker.topology.recognizers["sphinx"], AudioReady, handler)
    await broker.pull(Pull((subscription,), limit), on_failure=told.append)
    await until(lambda: bool(told))
    assert "ZeroDivisionError('a bug in the limit')" in told[0]
    assert "pulling from" in caplog.text
    await broker.stop_consuming(grace_seconds=1)


async def test_a_broker_whose_first_node_does_not_answer_uses_the_next(
    settings: CommonSettings,
) -> None:
    silent = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    listed = settings.model_copy(update={"broker_urls": (AmqpDsn(silent), settings.broker_url)})
    broker = await Broker(listed).connect()
    try:
        received: list[Event] = []

        async def handler(event: MediaUploaded) -> None:
            received.append(event)

        await broker.consume(Subscription(broker.topology.transcoder, MediaUploaded, handler))
        await broker.publish(MediaUploaded(job_id=FIRST))
        await until(lambda: len(received) == 1)
    finally:
        await broker.close()


async def test_a_queue_created_with_other_replicas_is_taken_as_it_is(
    settings: CommonSettings,
) -> None:
    # A deployment that grows from one node to three: its queues exist with one replica.
    await (await Broker(settings.model_copy(update={"quorum_group_size": 1})).connect()).close()
    broker = await Broker(settings.model_copy(update={"quorum_group_size": 3})).connect()
    try:
        await broker.publish(MediaUploaded(job_id=FIRST))
        assert await broker.queued_messages(broker.topology.transcoder.name) == 1
    finally:
        await broker.close()
