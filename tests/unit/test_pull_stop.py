"""A recognizer told to stop stops pulling, even when Python 3.11 loses the cancellation: its
`asyncio.wait_for` (inside aiormq's get) returns the broker's answer instead of raising when
the answer and the cancellation arrive together, and the pulling loop would go on for ever."""

import asyncio
from typing import Any

from shared.broker import Broker, Pull
from shared.pulling import Puller
from shared.settings import CommonSettings


class AnsweringAsCancelled:
    """A queue whose first get loses its cancellation the way 3.11's `wait_for` does: the
    broker's "empty" answer came in the same moment, so it is returned instead."""

    def __init__(self) -> None:
        self.name = "pieces"
        self.asked = asyncio.Event()
        self.cancellations_lost = 0

    async def get(self, **_options: Any) -> None:
        self.asked.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            if self.cancellations_lost:
                raise
            self.cancellations_lost += 1
        return None


async def test_stopping_ends_pulling_though_the_cancellation_was_lost() -> None:
    queue = AnsweringAsCancelled()
    queues: Any = [queue]
    puller = Puller(queues, Pull((), lambda: 1), None)  # type: ignore[arg-type]
    broker = Broker(CommonSettings())
    failures: list[str] = []
    connection: Any = None
    broker._start_pulling(puller, connection, queue.name, failures.append)
    await queue.asked.wait()

    await asyncio.wait_for(broker.stop_consuming(grace_seconds=1), timeout=5)

    assert queue.cancellations_lost == 1
    assert failures == []
