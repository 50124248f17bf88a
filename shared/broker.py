"""The RabbitMQ transport: connect, declare the topology, publish with confirms, consume with acks.

Handlers never see aio-pika. A handler takes a typed event and returns the event to publish next
(or None). A message is acked only after the handler returned and its next event was confirmed by
the broker; a handler that raises has its message requeued, and the quorum queue's delivery limit
parks a message that keeps failing.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Self, TypeVar

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from pydantic import ValidationError

from shared.events import Event
from shared.settings import CommonSettings
from shared.topology import QueueSpec, Topology, build_topology

log = logging.getLogger(__name__)

EventT = TypeVar("EventT", bound=Event)
Handler = Callable[[EventT], Awaitable[Event | None]]

PUBLISH_TIMEOUT_SECONDS = 10


class BrokerUnavailable(Exception):
    """The broker did not confirm a publish: it is unreachable, or refused or returned it."""


class Broker:
    def __init__(self, settings: CommonSettings) -> None:
        self.topology: Topology = build_topology(settings)
        self._url = str(settings.broker_url)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    async def connect(self) -> Self:
        """Connect (reconnecting by itself later on) and declare the whole topology."""
        self._connection = await aio_pika.connect_robust(self._url, timeout=10)
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        self._exchange = await self._channel.declare_exchange(
            self.topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for spec in self.topology.all_queues:
            await self._declare(spec)
        return self

    async def _declare(self, spec: QueueSpec) -> AbstractQueue:
        queue = await self.channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
        for routing_key in spec.routing_keys:
            await queue.bind(self.exchange, routing_key)
        return queue

    @property
    def channel(self) -> AbstractChannel:
        if self._channel is None:
            raise RuntimeError("Broker.connect() has not been awaited")
        return self._channel

    @property
    def exchange(self) -> AbstractExchange:
        if self._exchange is None:
            raise RuntimeError("Broker.connect() has not been awaited")
        return self._exchange

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def publish(self, event: Event) -> None:
        """Publish persistently and wait for the broker's confirm; raises when it is not given."""
        message = aio_pika.Message(
            body=event.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            type=event.routing_key,
        )
        try:
            await self.exchange.publish(
                message,
                routing_key=event.routing_key,
                mandatory=True,
                timeout=PUBLISH_TIMEOUT_SECONDS,
            )
        except (AMQPError, ChannelInvalidStateError, ConnectionError, TimeoutError) as error:
            raise BrokerUnavailable(
                f"{event.routing_key} for job {event.job_id}: {error!r}"
            ) from error

    async def consume(
        self, queue_name: str, event_type: type[EventT], handler: Handler[EventT], prefetch: int
    ) -> None:
        await self.channel.set_qos(prefetch_count=prefetch)
        queue = await self.channel.get_queue(queue_name, ensure=False)

        async def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._in_flight.add(task)
            try:
                await self._process(message, event_type, handler)
            finally:
                self._in_flight.discard(task)

        tag = await queue.consume(on_message)
        self._consumers.append((queue, tag))
        log.info("consuming %s (prefetch %d)", queue_name, prefetch)

    async def _process(
        self, message: AbstractIncomingMessage, event_type: type[EventT], handler: Handler[EventT]
    ) -> None:
        try:
            event = event_type.model_validate_json(message.body)
        except ValidationError as error:
            log.error("parking a malformed %s message: %s", event_type.__name__, error)
            await message.reject(requeue=False)
            return
        try:
            next_event = await handler(event)
            if next_event is not None:
                await self.publish(next_event)
        except asyncio.CancelledError:
            await message.nack(requeue=True)
            raise
        except Exception:
            log.exception("job %s: handling %s failed; requeued", event.job_id, event_type.__name__)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def watch(
        self, name: str, routing_keys: tuple[str, ...], on_event: Callable[[Event], None]
    ) -> None:
        """Receive copies of events on a queue that lives only as long as this connection."""
        queue = await self.channel.declare_queue(name, exclusive=True, auto_delete=True)
        for routing_key in routing_keys:
            await queue.bind(self.exchange, routing_key)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                on_event(Event.model_validate_json(message.body))
            except ValidationError as error:
                log.warning("ignoring a malformed event on %s: %s", name, error)

        await queue.consume(on_message, no_ack=True)

    async def stop_consuming(self, grace_seconds: float) -> None:
        """Take no new messages, give the ones in hand `grace_seconds` to finish."""
        for queue, tag in self._consumers:
            await queue.cancel(tag)
        self._consumers.clear()
        if self._in_flight:
            log.info(
                "waiting up to %.0f s for %d job(s) in hand", grace_seconds, len(self._in_flight)
            )
            _, unfinished = await asyncio.wait(self._in_flight, timeout=grace_seconds)
            if unfinished:
                log.warning("handing back %d unfinished job(s) to the broker", len(unfinished))
                for task in unfinished:
                    task.cancel()
                await asyncio.wait(unfinished)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
