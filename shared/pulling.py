"""Pulling: taking messages from several queues with basic.get, only while fewer than a limit
are in hand together, instead of consuming each with a prefetch of its own (`shared.broker.Pull`
says why)."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from shared.faults import BROKER_AWAY_PAUSE_SECONDS, BROKER_CALL_TIMEOUT_SECONDS, CHANNEL_ERRORS
from shared.messages import published_at

log = logging.getLogger(__name__)

PULL_POLL_SECONDS = 1.0
# A hint may arrive before its message is committed to the quorum queue: look again soon.
HINTED_POLL_SECONDS = 0.05
HINT_PATIENCE_SECONDS = 0.5


class PullOrder(Protocol):
    """What a puller follows (`shared.broker.Pull` is one)."""

    @property
    def limit(self) -> Callable[[], int]:
        """How many may be in hand at once, asked before each take."""
        ...

    @property
    def oldest_first_after_seconds(self) -> float | None:
        """Once the head of a queue may have waited this long, the one waiting longest goes
        first; until then the queues go in order."""
        ...


# Handles a message taken from the queue of that index, as a task of its own.
Process = Callable[[AbstractIncomingMessage, int], asyncio.Task[None]]


class Puller:
    """Takes messages from `queues` while fewer than `order.limit()` are in hand, and hands
    each to `process`: at once when one is settled or a hint says something was routed, else
    every PULL_POLL_SECONDS."""

    def __init__(self, queues: Sequence[AbstractQueue], order: PullOrder, process: Process) -> None:
        self._process = process
        self._order = order
        self._queues = queues
        self._in_hand = 0
        self._settled = asyncio.Event()
        self._hinted = asyncio.Event()
        self._hinted_at = -HINT_PATIENCE_SECONDS
        # For each queue, a moment no message waiting in it was published before (wall clock):
        # when the last one taken from it was published, or when it was last found empty. What
        # waited before the puller started counts from its start: in order at first.
        self._waiting_since = [time.time()] * len(queues)
        self._stopping = False

    def stop(self) -> None:
        """End `run` at its next turn. Cancelling it is not enough on Python 3.11: a
        cancellation that arrives as the broker answers a get is lost inside aiormq's
        `asyncio.wait_for`, and the loop would go on."""
        self._stopping = True
        self._settled.set()
        self._hinted.set()

    def hint(self, _routing_key: str, _body: bytes) -> None:
        self._hinted_at = asyncio.get_running_loop().time()
        self._hinted.set()

    async def run(self, connection: AbstractRobustConnection) -> None:
        while not self._stopping:
            if self._in_hand >= self._order.limit():
                self._settled.clear()
                # The limit may also rise by itself (a worker resting from work).
                await _within(PULL_POLL_SECONDS, self._settled.wait())
                continue
            self._hinted.clear()
            try:
                taken = await self._take()
            except CHANNEL_ERRORS as error:
                log.warning("broker away while pulling (%r); waiting for it", error)
                await asyncio.sleep(BROKER_AWAY_PAUSE_SECONDS)
                await connection.connected.wait()
                continue
            if taken is None:
                since_hint = asyncio.get_running_loop().time() - self._hinted_at
                recent = since_hint < HINT_PATIENCE_SECONDS
                await _within(
                    HINTED_POLL_SECONDS if recent else PULL_POLL_SECONDS, self._hinted.wait()
                )
                continue
            self._in_hand += 1
            self._process(*taken).add_done_callback(self._on_settled)

    async def _take(self) -> tuple[AbstractIncomingMessage, int] | None:
        """The next message of the first queue that has one, in `_in_order`."""
        for index in self._in_order():
            looked_at = time.time()
            message = await self._queues[index].get(
                no_ack=False, fail=False, timeout=BROKER_CALL_TIMEOUT_SECONDS
            )
            if message is None:
                self._waiting_since[index] = looked_at
                continue
            published = published_at(message)
            if published is not None:
                self._waiting_since[index] = published  # queues are first in, first out
            return message, index
        return None

    def _in_order(self) -> list[int]:
        """The queues in their order; but those whose head may have waited past the order's
        `oldest_first_after_seconds` go first, the one waiting longest first."""
        in_order = list(range(len(self._queues)))
        patience = self._order.oldest_first_after_seconds
        if patience is None:
            return in_order
        moment = time.time()
        overdue = [i for i in in_order if moment - self._waiting_since[i] >= patience]
        overdue.sort(key=lambda i: self._waiting_since[i])
        return overdue + [i for i in in_order if i not in overdue]

    def _on_settled(self, _task: asyncio.Task[None]) -> None:
        self._in_hand -= 1
        self._settled.set()


async def _within(seconds: float, waiting: Awaitable[Any]) -> None:
    """Wait for `waiting`, or `seconds`, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await waiting
