"""Exchange and queue names, and the arguments each queue is declared with.

One topic exchange carries every event. Each consumer has its own queue named
``{namespace}.{event}--{consumer}``; a work queue is a durable quorum queue whose messages are
parked in ``<queue>.parked`` after `delivery_limit` failed deliveries. The janitor's delay queue
holds finished jobs for the cleanup delay, then dead-letters them into the janitor's work queue.
"""

from dataclasses import dataclass, field
from typing import Any

from shared.events import AudioReady, JobFailed, MediaUploaded, TranscriptDone
from shared.settings import CommonSettings

DEFAULT_EXCHANGE = ""


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: dict[str, Any]
    routing_keys: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Topology:
    exchange: str
    transcoder: QueueSpec
    recognizer: QueueSpec
    janitor_delay: QueueSpec
    janitor: QueueSpec

    @property
    def work_queues(self) -> tuple[QueueSpec, ...]:
        return self.transcoder, self.recognizer, self.janitor

    @property
    def all_queues(self) -> tuple[QueueSpec, ...]:
        parked = tuple(
            QueueSpec(name=parking_queue(q.name), arguments={"x-queue-type": "quorum"})
            for q in self.work_queues
        )
        return (*self.work_queues, self.janitor_delay, *parked)


def parking_queue(queue: str) -> str:
    return f"{queue}.parked"


def _work_queue(name: str, settings: CommonSettings, routing_keys: tuple[str, ...]) -> QueueSpec:
    arguments = {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": DEFAULT_EXCHANGE,
        "x-dead-letter-routing-key": parking_queue(name),
    }
    return QueueSpec(name=name, arguments=arguments, routing_keys=routing_keys)


def build_topology(settings: CommonSettings) -> Topology:
    ns = settings.namespace
    janitor = _work_queue(f"{ns}.job.finished--janitor", settings, routing_keys=())
    delay_ms = round(settings.cleanup_delay_seconds * 1000)
    # The delay is part of the name: RabbitMQ refuses to re-declare a queue with another TTL.
    janitor_delay = QueueSpec(
        name=f"{ns}.job.finished--janitor.delay-{delay_ms}ms",
        arguments={
            "x-message-ttl": delay_ms,
            "x-dead-letter-exchange": DEFAULT_EXCHANGE,
            "x-dead-letter-routing-key": janitor.name,
        },
        routing_keys=(TranscriptDone.routing_key, JobFailed.routing_key),
    )
    return Topology(
        exchange=f"{ns}.events",
        transcoder=_work_queue(
            f"{ns}.{MediaUploaded.routing_key}--transcoder", settings, (MediaUploaded.routing_key,)
        ),
        recognizer=_work_queue(
            f"{ns}.{AudioReady.routing_key}--recognizer", settings, (AudioReady.routing_key,)
        ),
        janitor_delay=janitor_delay,
        janitor=janitor,
    )
