"""Connections to a RabbitMQ cluster given several node addresses.

aio-pika's robust connection reconnects to the one URL it was given; with that node gone it
would wait for it forever. `FailoverConnection` tries the next node after every lost connection
and every failed attempt, so a service moves to a node that answers. Quorum queues live on
several nodes and publisher confirms come from the queue's leader wherever it is, so a service
needs nothing else to carry on: its channels, queues and consumers are restored on the new node.
"""

import logging
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aio_pika.robust_connection import RobustConnection
from yarl import URL

log = logging.getLogger(__name__)

# With one node, aio-pika's own pause; with several, the next node is likely up already.
RECONNECT_SECONDS_ONE_NODE = 5.0
RECONNECT_SECONDS_CLUSTER = 1.0


class FailoverConnection(RobustConnection):
    """A robust connection that goes round the cluster's nodes, starting at `nodes[0]`."""

    def __init__(self, nodes: Sequence[str], **kwargs: Any) -> None:
        if not nodes:
            raise ValueError("a broker needs at least one node")
        self._nodes = [URL(node) for node in nodes]
        self._current = 0
        super().__init__(self._nodes[0], **kwargs)

    @property
    def url(self) -> URL:
        """The node of the connection now, or of the next attempt while it is away."""
        return self._nodes[self._current]

    @url.setter
    def url(self, value: URL) -> None:
        # Connection.__init__ sets it, and so does a password change: to the current node.
        self._nodes[self._current] = value

    async def _on_connection_close(self, closing: Any) -> None:
        # Called when the connection is lost and when an attempt fails: either way, the next
        # attempt goes to the next node.
        if len(self._nodes) > 1 and not self._close_called:
            self._current = (self._current + 1) % len(self._nodes)
            log.info("broker connection: trying %s next", _shown(self.url))
        await super()._on_connection_close(closing)


def rotations(nodes: Sequence[str]) -> list[list[str]]:
    """Each node first once, the others after it in their order."""
    return [[*nodes[start:], *nodes[:start]] for start in range(len(nodes))]


async def connect_robust(nodes: Sequence[str], seconds_per_node: float) -> FailoverConnection:
    """A robust connection to the first node that answers; raises the last node's error."""
    reconnect = RECONNECT_SECONDS_CLUSTER if len(nodes) > 1 else RECONNECT_SECONDS_ONE_NODE
    failure: BaseException | None = None
    for order in rotations(nodes):
        connection = FailoverConnection(order, reconnect_interval=reconnect)
        try:
            await connection.connect(timeout=seconds_per_node)
        except CONNECTION_EXCEPTIONS as error:
            failure = error
            await connection.close()
            log.warning("RabbitMQ at %s does not answer: %r", _shown(URL(order[0])), error)
            continue
        return connection
    assert failure is not None
    raise failure


async def connect_once(nodes: Sequence[str], seconds_per_node: float = 10) -> AbstractConnection:
    """A plain connection (no reconnecting) to the first node that answers, for scripts."""
    failure: BaseException | None = None
    for node in nodes:
        try:
            return await aio_pika.connect(node, timeout=seconds_per_node)
        except CONNECTION_EXCEPTIONS as error:
            failure = error
    assert failure is not None
    raise failure


def _shown(url: URL) -> str:
    return f"{url.host}:{url.port}"
