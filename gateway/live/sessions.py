"""The live sessions of one gateway: how many it holds and whether that is as many as it may
(who else may open one is `gateway.live.admission`'s), the threads their work runs in, and ending
them all when the gateway stops."""

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from gateway.settings import GatewaySettings

T = TypeVar("T")


class Stoppable(Protocol):
    def stop(self) -> None: ...


class LiveSessions:
    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._open: set[Stoppable] = set()
        self._closed = asyncio.Event()
        self._closed.set()
        self.stopping = False
        # Live work apart from the default threads, which uploads and ffprobe use.
        self._executor = ThreadPoolExecutor(settings.live_threads, thread_name_prefix="live")

    @property
    def total(self) -> int:
        return len(self._open)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in the live sessions' threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    def full(self) -> str | None:
        """Why this gateway takes no more sessions now, or None."""
        if self.total < self._settings.max_live_sessions:
            return None
        return (
            f"This gateway holds {self.total} live sessions, as many as it may"
            " (STT_MAX_LIVE_SESSIONS); try again later."
        )

    @contextlib.contextmanager
    def holding(self, session: Stoppable) -> Iterator[None]:
        self._open.add(session)
        self._closed.clear()
        try:
            yield
        finally:
            self._open.discard(session)
            if not self._open:
                self._closed.set()

    async def stop_all(self, within: float) -> None:
        """As the gateway stops: have every session hand out what it holds, wait (at most
        `within` seconds) for the texts under way, and close."""
        self.stopping = True
        for session in list(self._open):
            session.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._closed.wait()
