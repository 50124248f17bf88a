"""Exchange and queue names, and the arguments each queue is declared with.

One topic exchange carries every event. Each consumer has its own queue named
``{namespace}.{event}--{consumer}``. A work queue is a durable quorum queue whose messages are
parked in ``<queue>.parked`` after `delivery_limit` failed deliveries. Transient failures wait in
a retry queue (one per delay, ``{namespace}.retry-{ms}ms``) whose expired messages go back to the
queue they came from. The janitor's delay queue holds finished jobs for the cleanup delay, then
dead-letters them into the janitor's work queue. The gateways share a work queue of finished
jobs, from which they deliver callbacks.

Every durable queue is a quorum queue, so it lives on several nodes of a cluster and a message
outlives the node that took it. The retry, delay and interim queues were classic queues once; as
quorum queues they carry new names (`.quorum`), because RabbitMQ refuses to declare a queue again
with other arguments.
"""

from dataclasses import dataclass, field
from typing import Any

from shared.engines import ENGINE_SPECS
from shared.events import (
    FINISHED,
    INTERIM_EXPIRY_SECONDS,
    AudioReady,
    InterimReady,
    MediaUploaded,
    UtteranceReady,
)
from shared.settings import CommonSettings

# RabbitMQ's default exchange routes a message to the queue named by its routing key.
DEFAULT_EXCHANGE = ""


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: dict[str, Any]
    routing_keys: tuple[str, ...] = field(default=())
    replicas: int | None = None
    """Nodes a quorum queue is created on; only read when it is created (see Broker)."""


@dataclass(frozen=True)
class Topology:
    exchange: str
    transcoder: QueueSpec
    recognizers: dict[str, QueueSpec]
    """One queue per engine, so each engine's pool of recognizers scales on its own."""
    pieces: dict[str, QueueSpec]
    """Per engine, the pieces of recordings cut in several, apart so short jobs pass them."""
    live: dict[str, QueueSpec]
    """Per engine, the utterances of live sessions, which recognizers take before file work."""
    janitor_delay: QueueSpec
    janitor: QueueSpec
    callbacks: QueueSpec
    parked: tuple[QueueSpec, ...]
    retries: tuple[QueueSpec, ...]
    """One per retry delay, in the order of the delays; each is also the name of its exchange."""
    interim: dict[str, QueueSpec] = field(default_factory=dict)
    """Per engine, the interim passes of live sessions: not work queues (nothing is parked or
    retried), their messages dropped once INTERIM_EXPIRY_SECONDS old or when too many wait."""

    @property
    def work_queues(self) -> tuple[QueueSpec, ...]:
        return (
            self.transcoder,
            *self.recognizers.values(),
            *self.pieces.values(),
            *self.live.values(),
            self.janitor,
            self.callbacks,
        )

    @property
    def all_queues(self) -> tuple[QueueSpec, ...]:
        return (
            *self.work_queues,
            self.janitor_delay,
            *self.parked,
            *self.retries,
            *self.interim.values(),
        )


def parking_queue(queue: str) -> str:
    return f"{queue}.parked"


def retry_queue_name(namespace: str, delay_seconds: float) -> str:
    return f"{namespace}.retry-{round(delay_seconds * 1000)}ms.quorum"


def _delay(ttl_ms: int) -> dict[str, Any]:
    """A replicated queue whose messages leave after `ttl_ms` for their dead-letter target.
    At-least-once dead-lettering keeps a message until its target confirms it (RabbitMQ needs
    overflow reject-publish for that); the default would drop it if the leader died between."""
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": ttl_ms,
        "x-dead-letter-exchange": DEFAULT_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def _work_queue(name: str, settings: CommonSettings, routing_keys: tuple[str, ...]) -> QueueSpec:
    arguments = {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": DEFAULT_EXCHANGE,
        "x-dead-letter-routing-key": parking_queue(name),
    }
    return QueueSpec(
        name=name,
        arguments=arguments,
        routing_keys=routing_keys,
        replicas=settings.queue_replicas,
    )


def _parked(work_queue: QueueSpec, settings: CommonSettings) -> QueueSpec:
    # Whatever keeps failing here as well is dropped (and logged) rather than looping forever.
    arguments = {"x-queue-type": "quorum", "x-delivery-limit": settings.delivery_limit}
    return QueueSpec(
        name=parking_queue(work_queue.name), arguments=arguments, replicas=settings.queue_replicas
    )


def _retry(settings: CommonSettings, delay_seconds: float) -> QueueSpec:
    # No dead-letter routing key: an expired message keeps the one it was published with,
    # which names the work queue it came from.
    return QueueSpec(
        name=retry_queue_name(settings.namespace, delay_seconds),
        arguments=_delay(round(delay_seconds * 1000)),
        replicas=settings.queue_replicas,
    )


# More interim passes than this waiting at once means the recognizers are far behind: the oldest
# are dropped (they would expire unanswered anyway).
INTERIM_QUEUE_LENGTH = 256


def _interim(settings: CommonSettings, engine: str) -> QueueSpec:
    """Replicated although its passes are disposable: every service declares every queue again
    when it reconnects, and a classic queue whose node is down refuses that declaration, which
    would keep the whole connection, and with it file work, from coming back."""
    ttl_ms = round(INTERIM_EXPIRY_SECONDS * 1000)
    # The lifetime is part of the name: RabbitMQ refuses to re-declare a queue with another TTL.
    return QueueSpec(
        name=(
            f"{settings.namespace}.{InterimReady.topic_for(engine)}--recognizer"
            f".ttl-{ttl_ms}ms.quorum"
        ),
        arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": ttl_ms,
            "x-max-length": INTERIM_QUEUE_LENGTH,
            "x-overflow": "drop-head",
        },
        routing_keys=(InterimReady.topic_for(engine),),
        replicas=settings.queue_replicas,
    )


def build_topology(settings: CommonSettings) -> Topology:
    ns = settings.namespace
    transcoder = _work_queue(
        f"{ns}.{MediaUploaded.routing_key}--transcoder", settings, (MediaUploaded.routing_key,)
    )
    recognizers = {
        engine: _work_queue(
            f"{ns}.{AudioReady.topic_for(engine)}--recognizer",
            settings,
            (AudioReady.topic_for(engine),),
        )
        for engine in ENGINE_SPECS
    }
    pieces = {
        engine: _work_queue(
            f"{ns}.{AudioReady.topic_for(engine, pieces=True)}--recognizer",
            settings,
            (AudioReady.topic_for(engine, pieces=True),),
        )
        for engine in ENGINE_SPECS
    }
    live = {
        engine: _work_queue(
            f"{ns}.{UtteranceReady.topic_for(engine)}--recognizer",
            settings,
            (UtteranceReady.topic_for(engine),),
        )
        for engine in ENGINE_SPECS
    }
    janitor = _work_queue(f"{ns}.job.finished--janitor", settings, routing_keys=())
    delay_ms = round(settings.cleanup_delay_seconds * 1000)
    # The delay is part of the name: RabbitMQ refuses to re-declare a queue with another TTL.
    janitor_delay = QueueSpec(
        name=f"{ns}.job.finished--janitor.delay-{delay_ms}ms.quorum",
        arguments={**_delay(delay_ms), "x-dead-letter-routing-key": janitor.name},
        routing_keys=FINISHED,
        replicas=settings.queue_replicas,
    )
    callbacks = _work_queue(f"{ns}.job.finished--gateway", settings, FINISHED)
    work_queues = (
        transcoder,
        *recognizers.values(),
        *pieces.values(),
        *live.values(),
        janitor,
        callbacks,
    )
    return Topology(
        exchange=f"{ns}.events",
        transcoder=transcoder,
        recognizers=recognizers,
        pieces=pieces,
        live=live,
        janitor_delay=janitor_delay,
        janitor=janitor,
        callbacks=callbacks,
        parked=tuple(_parked(queue, settings) for queue in work_queues),
        retries=tuple(
            _retry(settings, delay) for delay in dict.fromkeys(settings.retry_delays_seconds)
        ),
        interim={engine: _interim(settings, engine) for engine in ENGINE_SPECS},
    )
