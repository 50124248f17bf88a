"""The RabbitMQ transport: connect, declare the topology, publish with confirms, consume with acks.

Handlers never see aio-pika. A handler takes a typed event and returns the event to publish next
(or None). A message is acked only after the handler returned and its next event was confirmed:

- a transient failure (the broker, the database or an online service away) sends a copy to the
  retry queue of the next delay and acks the original once that copy is confirmed; after the
  last delay the message is rejected into its parking queue;
- any other exception requeues the message, and the quorum queue's delivery limit parks a
  message that keeps failing;
- a message that does not parse is parked at once.
"""

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelPreconditionFailed
from pydantic import ValidationError

from shared import metrics
from shared.events import Event
from shared.failover import connect_robust
from shared.faults import (
    BROKER_AWAY_PAUSE_SECONDS,
    BROKER_CALL_TIMEOUT_SECONDS,
    CHANNEL_ERRORS,
    TRANSIENT_ERRORS,
    BrokerUnavailable,
    TopologyConflict,
)
from shared.logs import current_event, current_job
from shared.messages import (
    PUBLISHED_HEADER,
    RETRY_HEADER,
    current_message,
    published_at,
    retries_of,
)
from shared.pulling import Puller
from shared.settings import CommonSettings
from shared.topology import QueueSpec, Topology, build_topology, retry_queue_name

log = logging.getLogger(__name__)

EventT = TypeVar("EventT", bound=Event)
Handler = Callable[[EventT], Awaitable[Event | None]]
Publish = Callable[[Event], Awaitable[None]]

GROUP_SIZE_ARGUMENT = "x-quorum-initial-group-size"


@dataclass(frozen=True)
class Subscription(Generic[EventT]):
    """A handler for the events on one queue, with how many it may hold at once."""

    queue: QueueSpec
    event_type: type[EventT]
    handler: Handler[EventT]
    prefetch: int = 1
    """For a consumed queue; a pulled one is bound by its Pull's limit instead."""
    published: Publish | None = None
    """Told of each event the handler returned, once the broker has confirmed it."""


@dataclass(frozen=True)
class Pull:
    """Handlers for several queues that take their messages only while fewer than `limit` of
    them are in hand together, the earlier queues first.

    RabbitMQ's prefetch counts per consumer (and quorum queues refuse one shared by a channel),
    so a worker consuming several queues would hold a prefetch's worth from each: work it cannot
    start while another worker idles. Pulled queues are read with basic.get instead, as soon as
    a message is routed to one of them (a copy of its routing reaches a private queue as a
    hint) and, for messages that come back from a retry queue unannounced, every second."""

    subscriptions: tuple[Subscription[Any], ...]
    limit: Callable[[], int]
    """How many may be in hand at once, asked before each take."""
    oldest_first_after_seconds: float | None = None
    """Once a message may have waited this long, the queues go oldest first instead of in
    order, so a steady stream into an earlier queue cannot starve a later one."""


class Broker:
    def __init__(self, settings: CommonSettings) -> None:
        self.topology: Topology = build_topology(settings)
        self._nodes = [str(node) for node in settings.broker_nodes]
        # How each queue is declared, decided once by connect(): see _declaration.
        self._declarations: dict[str, dict[str, Any]] = {}
        self._namespace = settings.namespace
        self._retry_delays = settings.retry_delays_seconds
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._pullers: list[tuple[Puller, asyncio.Task[None]]] = []

    async def connect(self) -> Self:
        """Connect (reconnecting by itself later on) and declare the whole topology."""
        self._connection = await connect_robust(self._nodes, seconds_per_node=10)
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        self._exchange = await self._channel.declare_exchange(
            self.topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for spec in self.topology.all_queues:
            self._declarations[spec.name] = await self._declaration(self._connection, spec)
            queue = await self._declare(self._channel, spec)
            for routing_key in spec.routing_keys:
                await queue.bind(self._exchange, routing_key)
        for spec in self.topology.retries:
            retry_exchange = await self._channel.declare_exchange(
                spec.name, aio_pika.ExchangeType.FANOUT, durable=True
            )
            await (await self._channel.get_queue(spec.name)).bind(retry_exchange)
        return self

    async def _declaration(
        self, connection: AbstractRobustConnection, spec: QueueSpec
    ) -> dict[str, Any]:
        """How to declare `spec`'s queue. A new queue is created on `spec.replicas` nodes; the
        group size is only read at creation, yet RabbitMQ compares it like any argument, so a
        queue that exists with another one is taken as it is (passively) rather than refused.
        Tried on a channel of its own, because a refused declaration closes its channel."""
        arguments = dict(spec.arguments)
        if spec.replicas is not None:
            arguments[GROUP_SIZE_ARGUMENT] = spec.replicas
        for declaration in ({"arguments": arguments}, {"passive": True}):
            probe = await connection.channel(publisher_confirms=False)
            try:
                await probe.declare_queue(spec.name, durable=True, **declaration)
                return declaration
            except ChannelPreconditionFailed as error:
                if GROUP_SIZE_ARGUMENT not in str(error):
                    raise TopologyConflict(
                        f"queue {spec.name} exists with other arguments ({error}); an older"
                        " version declared it. Drain and delete it, or use another"
                        " STT_NAMESPACE."
                    ) from error
                log.info("queue %s keeps the replicas it was created with", spec.name)
            finally:
                # Closed by us even when the broker closed it, so it is never restored.
                with contextlib.suppress(*CHANNEL_ERRORS):
                    await probe.close()
        raise AssertionError("a passive declaration of an existing queue cannot be refused")

    async def _declare(self, channel: AbstractChannel, spec: QueueSpec) -> AbstractQueue:
        """Declared (not merely looked up) so a robust channel restores it after a reconnect."""
        declaration = self._declarations.get(spec.name, {"arguments": spec.arguments})
        return await channel.declare_queue(spec.name, durable=True, **declaration)

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
        """Connected right now; False while the robust connection is reconnecting."""
        return self._connection is not None and self._connection.connected.is_set()

    async def publish(self, event: Event) -> None:
        """Publish persistently and wait for the broker's confirm; raises BrokerUnavailable."""
        await self._publish(self.exchange.name, event.topic, event.model_dump_json().encode())

    async def _publish(
        self, exchange: str, routing_key: str, body: bytes, headers: dict[str, Any] | None = None
    ) -> None:
        message = aio_pika.Message(
            body=body,
            # AMQP's own timestamp counts whole seconds: too coarse for a queue's wait.
            headers={**(headers or {}), PUBLISHED_HEADER: round(time.time() * 1000)},
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            target = await self.channel.get_exchange(exchange, ensure=False)
            await target.publish(
                message,
                routing_key=routing_key,
                mandatory=True,
                timeout=BROKER_CALL_TIMEOUT_SECONDS,
            )
        except CHANNEL_ERRORS as error:
            raise BrokerUnavailable(f"publishing {routing_key}: {error!r}") from error

    async def consume(self, subscription: Subscription[EventT]) -> None:
        """Start consuming; if the broker is away right now, wait until it is back."""
        await self._subscribe(lambda connection: self._consume(connection, subscription))

    async def pull(self, pull: Pull, on_failure: Callable[[str], None] | None = None) -> None:
        """Start pulling; if the broker is away right now, wait until it is back. Should pulling
        ever end by an error, it is logged and `on_failure` told why: nothing would take the
        queues' messages any more, so the worker must not carry on as if it were at work."""
        await self._subscribe(lambda connection: self._pull(connection, pull, on_failure))

    async def _subscribe(
        self, start: Callable[[AbstractRobustConnection], Awaitable[None]]
    ) -> None:
        assert self._connection is not None, "Broker.connect() has not been awaited"
        while True:
            await self._connection.connected.wait()
            try:
                await start(self._connection)
                return
            except (*CHANNEL_ERRORS, RuntimeError) as error:
                log.warning("broker away while subscribing (%r); waiting for it", error)
                await asyncio.sleep(BROKER_AWAY_PAUSE_SECONDS)

    async def _consume(
        self, connection: AbstractRobustConnection, subscription: Subscription[EventT]
    ) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=subscription.prefetch)
        spec = subscription.queue
        queue = await self._declare(channel, spec)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._process_in_flight(message, subscription)

        tag = await queue.consume(on_message)
        self._consumers.append((queue, tag))
        log.info("consuming %s (prefetch %d)", spec.name, subscription.prefetch)

    async def _pull(
        self,
        connection: AbstractRobustConnection,
        pull: Pull,
        on_failure: Callable[[str], None] | None,
    ) -> None:
        channel = await connection.channel()
        queues = [
            await self._declare(channel, subscription.queue) for subscription in pull.subscriptions
        ]
        puller = Puller(
            queues,
            pull,
            lambda message, index: self._start_processing(message, pull.subscriptions[index]),
        )
        routing_keys = tuple(
            key for subscription in pull.subscriptions for key in subscription.queue.routing_keys
        )
        await self.watch(f"{self._namespace}.hints.{uuid.uuid4().hex}", routing_keys, puller.hint)
        names = ", ".join(queue.name for queue in queues)
        self._start_pulling(puller, connection, names, on_failure)
        log.info("pulling from %s (%d at a time)", names, pull.limit())

    def _start_pulling(
        self,
        puller: Puller,
        connection: AbstractRobustConnection,
        names: str,
        on_failure: Callable[[str], None] | None,
    ) -> None:
        pulling = asyncio.create_task(puller.run(connection))
        pulling.add_done_callback(functools.partial(_pulling_ended, names, on_failure))
        self._pullers.append((puller, pulling))

    def _start_processing(
        self, message: AbstractIncomingMessage, subscription: Subscription[Any]
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(self._process_in_flight(message, subscription))
        self._in_flight.add(task)  # now, so that a stop right away still waits for it
        return task

    async def _process_in_flight(
        self, message: AbstractIncomingMessage, subscription: Subscription[EventT]
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            await self._process(message, subscription)
        finally:
            self._in_flight.discard(task)

    async def _process(
        self, message: AbstractIncomingMessage, subscription: Subscription[EventT]
    ) -> None:
        current_message.set(message)
        current_event.set(message.routing_key or subscription.queue.name)
        try:
            event = subscription.event_type.model_validate_json(message.body)
        except ValidationError as error:
            log.error("parking a malformed message from %s: %s", subscription.queue.name, error)
            await _settle(message.reject(requeue=False))
            return
        current_job.set(event.job_id)
        published = published_at(message)
        if published is not None and not message.redelivered:
            waited = max(time.time() - published, 0.0)
            metrics.queue_wait_seconds.labels(subscription.queue.name).observe(waited)
        try:
            next_event = await subscription.handler(event)
            if next_event is not None:
                await self.publish(next_event)
                if subscription.published is not None:
                    await subscription.published(next_event)
        except asyncio.CancelledError:
            await _settle(message.nack(requeue=True))
            raise
        except TRANSIENT_ERRORS as error:
            await self._retry_later(message, subscription.queue.name, event, error)
            return
        except Exception:
            log.exception("job %s: handler failed; requeued", event.job_id)
            await _settle(message.nack(requeue=True))
            return
        await _settle(message.ack())

    def retries_left(self) -> int:
        """How many more times a transient failure of the message being handled will be retried;
        0 on its last try. For a handler that must end things itself rather than be parked."""
        return max(len(self._retry_delays) - retries_of(current_message.get()), 0)

    async def _retry_later(
        self, message: AbstractIncomingMessage, queue: str, event: Event, error: Exception
    ) -> None:
        attempt = retries_of(message) + 1
        if self.retries_left() == 0:
            log.error("job %s: giving up after %d retries: %r", event.job_id, attempt - 1, error)
            await _settle(message.reject(requeue=False))
            return
        delay = self._retry_delays[attempt - 1]
        metrics.retries.labels(queue).inc()
        try:
            await self._publish(
                retry_queue_name(self._namespace, delay),
                routing_key=queue,
                body=message.body,
                headers={RETRY_HEADER: attempt},
            )
        except BrokerUnavailable:
            # With the broker away the message cannot be acked either: it comes back by itself.
            log.warning("job %s: %r; the broker will redeliver", event.job_id, error)
            await _settle(message.nack(requeue=True))
            return
        log.warning("job %s: %r; retry %d in %g s", event.job_id, error, attempt, delay)
        await _settle(message.ack())

    async def queued_messages(self, queue: str) -> int:
        """How many messages wait in `queue` to be delivered, right now (asked of the broker, not
        a cached answer; those delivered and not yet acked are not counted)."""
        if not self.is_connected:
            raise BrokerUnavailable(f"asking about {queue}: not connected")
        try:
            async with asyncio.timeout(BROKER_CALL_TIMEOUT_SECONDS):
                underlay = await self.channel.get_underlay_channel()
                declared = await underlay.queue_declare(queue, passive=True)
        except CHANNEL_ERRORS as error:
            raise BrokerUnavailable(f"asking about {queue}: {error!r}") from error
        return int(declared.message_count or 0)

    async def watch(
        self, name: str, routing_keys: tuple[str, ...], on_event: Callable[[str, bytes], None]
    ) -> None:
        """Receive copies of events (their routing key and body) on a queue that lives only as
        long as this connection."""
        queue = await self.channel.declare_queue(name, exclusive=True, auto_delete=True)
        for routing_key in routing_keys:
            await queue.bind(self.exchange, routing_key)

        async def on_message(message: AbstractIncomingMessage) -> None:
            on_event(message.routing_key or "", message.body)

        await queue.consume(on_message, no_ack=True)

    async def stop_consuming(self, grace_seconds: float) -> None:
        """Take no new messages, give the ones in hand `grace_seconds` to finish."""
        for queue, tag in self._consumers:
            with contextlib.suppress(*CHANNEL_ERRORS):
                await queue.cancel(tag)
        self._consumers.clear()
        for puller, pulling in self._pullers:
            puller.stop()
            pulling.cancel()
        await asyncio.gather(*(pulling for _, pulling in self._pullers), return_exceptions=True)
        self._pullers.clear()
        if not self._in_flight:
            return
        log.info(
            "waiting up to %g s for %d message(s) in hand", grace_seconds, len(self._in_flight)
        )
        _, unfinished = await asyncio.wait(self._in_flight, timeout=grace_seconds)
        if unfinished:
            log.warning("handing %d unfinished message(s) back to the broker", len(unfinished))
            for task in unfinished:
                task.cancel()
            await asyncio.wait(unfinished)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


def _pulling_ended(
    names: str, on_failure: Callable[[str], None] | None, pulling: asyncio.Task[None]
) -> None:
    if pulling.cancelled() or pulling.exception() is None:  # stop_consuming
        return
    why = f"pulling from {names} ended: {pulling.exception()!r}"
    log.error(why, exc_info=pulling.exception())
    if on_failure is not None:
        on_failure(why)


async def _settle(outcome: Awaitable[Any]) -> None:
    """Ack, nack or reject; on a dead channel the broker requeues the message by itself."""
    try:
        await outcome
    except CHANNEL_ERRORS as error:
        log.warning("could not settle a message (%r); the broker will redeliver it", error)
