"""Which failures are worth retrying: the broker, the database or an online engine away for a while."""

from pymongo.errors import ConnectionFailure


class StartupError(Exception):
    """The service cannot run as configured; the message says why."""


class TopologyConflict(StartupError):
    """A queue exists on the broker with arguments other than this version declares."""


class BrokerUnavailable(Exception):
    """The broker did not confirm a publish: it is unreachable, or refused or returned it."""


class ServiceUnavailable(Exception):
    """An online service a job needs (a hosted speech engine) is unreachable, overloaded or
    rate-limiting for now."""


# ConnectionFailure covers pymongo's AutoReconnect, NetworkTimeout and ServerSelectionTimeoutError.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    ConnectionFailure,
    BrokerUnavailable,
    ServiceUnavailable,
)
