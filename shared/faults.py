"""Which failures are worth retrying: the broker, the database or an online service being away
for a while."""

from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from pymongo.errors import ConnectionFailure


class StartupError(Exception):
    """The service cannot run as configured; the message says why."""


class TopologyConflict(StartupError):
    """A queue exists on the broker with arguments other than this version declares."""


class BrokerUnavailable(Exception):
    """The broker did not confirm a publish: it is unreachable, or refused or returned it."""


class ServiceUnavailable(Exception):
    """An online service a job needs (a hosted speech engine, a callback receiver) is
    unreachable, overloaded or rate-limiting for now."""


class MediaUnavailable(Exception):
    """This worker cannot read a job's media (a missing file, a store it cannot reach): most
    likely its own fault, not the job's, so the message goes back for another worker."""


def may_pass(http_status: int) -> bool:
    """Whether an HTTP error answer is likely to pass by itself if asked again later: a timeout,
    rate limiting or a server error, unlike a refusal of the request itself."""
    return http_status in (408, 429) or http_status >= 500


# ConnectionFailure covers pymongo's AutoReconnect, NetworkTimeout and ServerSelectionTimeoutError.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    ConnectionFailure,
    BrokerUnavailable,
    ServiceUnavailable,
    MediaUnavailable,
)

# The broker's channel or connection is away right now (a robust connection comes back by itself).
CHANNEL_ERRORS = (AMQPError, ChannelInvalidStateError, ConnectionError, TimeoutError)
# How long one call to the broker (a publish and its confirm, a get) may take before it counts
# as the broker being away, and how long to pause before trying again once it is.
BROKER_CALL_TIMEOUT_SECONDS = 10
BROKER_AWAY_PAUSE_SECONDS = 0.5
