"""The order a recognizer takes work in: whole recordings before the pieces of long ones, until
a piece has waited too long. The puller is the real one; the queues behind it are stand-ins that
hand out messages stamped with when they were published (a real queue's order is first in,
first out, which the puller relies on)."""

import time
from collections import deque
from types import SimpleNamespace
from typing import Any

from shared.broker import Pull
from shared.messages import PUBLISHED_HEADER
from shared.pulling import Puller


class Queue:
    """A queue holding messages published `ages` seconds ago; with `endless`, a fresh one keeps
    arriving (a steady stream of short clips)."""

    def __init__(self, name: str, ages: tuple[float, ...] = (), *, endless: bool = False) -> None:
        self.name = name
        self.waiting = deque(time.time() - age for age in ages)
        self.endless = endless

    async def get(self, **_options: Any) -> SimpleNamespace | None:
        if self.endless:  # a clip published just now, after the puller started
            self.waiting.append(time.time() + 0.002)
        if not self.waiting:
            return None
        published = round(self.waiting.popleft() * 1000)
        return SimpleNamespace(name=self.name, headers={PUBLISHED_HEADER: published})


async def taken(wholes: Queue, pieces: Queue, oldest_first_after: float | None) -> list[str]:
    queues: Any = [wholes, pieces]
    puller = Puller(queues, Pull((), lambda: 1, oldest_first_after), None)  # type: ignore[arg-type]
    names = []
    for _ in range(6):
        result = await puller._take()
        assert result is not None
        message: Any = result[0]
        names.append(message.name)
    return names


async def test_pieces_that_waited_too_long_go_before_a_stream_of_new_clips() -> None:
    order = await taken(Queue("wholes", endless=True), Queue("pieces", (90, 80, 70)), 0.0)
    assert order == ["wholes", "pieces", "pieces", "pieces", "wholes", "wholes"]


async def test_without_an_age_limit_pieces_wait_behind_every_clip() -> None:
    order = await taken(Queue("wholes", endless=True), Queue("pieces", (90, 80, 70)), None)
    assert order == ["wholes"] * 6


async def test_pieces_younger_than_the_limit_still_let_clips_go_first() -> None:
    order = await taken(Queue("wholes", (3, 2, 1), endless=True), Queue("pieces", (5,)), 60.0)
    assert order == ["wholes"] * 6
