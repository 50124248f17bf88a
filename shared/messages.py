"""What a message on the broker says besides its event: how often it was retried, when it was
published, where and why it was parked; and the message being handled, for the rare handler that
must know how it got here."""

from contextvars import ContextVar

from aio_pika.abc import AbstractIncomingMessage

RETRY_HEADER = "x-stt-retries"
# In whole milliseconds: AMQP carries a float header as 32 bits, to within a minute or so.
PUBLISHED_HEADER = "x-stt-published-ms"

current_message: ContextVar[AbstractIncomingMessage] = ContextVar("current_message")


def retries_of(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(RETRY_HEADER, 0)
    return value if isinstance(value, int) else 0


def published_at(message: AbstractIncomingMessage) -> float | None:
    """When the message was published (wall clock, seconds), if it says."""
    value = (message.headers or {}).get(PUBLISHED_HEADER)
    return value / 1000 if isinstance(value, int) else None


def parked_from(message: AbstractIncomingMessage) -> str:
    """The queue a parked message was dead-lettered from, as RabbitMQ recorded it."""
    deaths = (message.headers or {}).get("x-death")
    latest = deaths[0] if isinstance(deaths, list) and deaths else None
    queue = latest.get("queue") if isinstance(latest, dict) else None
    return str(queue) if queue else "unknown"


def gave_up_retrying(message: AbstractIncomingMessage) -> bool:
    """Whether a parked message was parked because its retries ran out (not for crashing)."""
    deaths = (message.headers or {}).get("x-death")
    latest = deaths[0] if isinstance(deaths, list) and deaths else None
    reason = latest.get("reason") if isinstance(latest, dict) else None
    return reason == "rejected" and retries_of(message) > 0
