"""The worker life cycle: a worker whose pulling ends halts with a failure, so that its
supervisor restarts it, instead of living on with nothing taking its queues' messages."""

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from shared import worker
from shared.broker import Pull, Subscription
from shared.settings import CommonSettings
from shared.worker import Halted, run_worker


class PullingDies:
    """A broker whose pulling ends by an error as soon as it starts (as when `Pull.limit` or the
    basic.get loop raises something unexpected)."""

    async def pull(self, _pull: Pull, on_failure: Callable[[str], None] | None = None) -> None:
        assert on_failure is not None, "the worker must hear when pulling ends"
        asyncio.get_running_loop().call_soon(on_failure, "pulling ended: RuntimeError()")

    async def stop_consuming(self, _grace_seconds: float) -> None:
        return None


async def test_a_worker_whose_pulling_ends_halts(monkeypatch: pytest.MonkeyPatch) -> None:
    @contextlib.asynccontextmanager
    async def connected(_settings: CommonSettings) -> AsyncIterator[tuple[Any, Any]]:
        yield PullingDies(), None

    @contextlib.asynccontextmanager
    async def subscriptions(*_args: Any) -> AsyncIterator[Sequence[Subscription[Any] | Pull]]:
        yield [Pull((), limit=lambda: 1)]

    monkeypatch.setattr(worker, "connected", connected)
    try:
        with pytest.raises(Halted, match="pulling ended"):
            async with asyncio.timeout(5):
                await run_worker("recognizer", CommonSettings(_env_file=None), subscriptions)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().remove_signal_handler(signum)
