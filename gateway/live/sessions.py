"""The live sessions of one gateway: how many it holds, whether one more may start (counting the
caller's sessions and jobs in the job store, over every gateway), the threads their work runs in,
and ending them all when the gateway stops."""

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from fastapi import HTTPException

from gateway.auth import Caller
from gateway.limits import check_limits
from gateway.services import Services
from gateway.settings import GatewaySettings
from shared.jobs.listing import list_key
from shared.jobs.models import Job, now

# A session marks its job alive this often; one not marked for SESSION_GONE_SECONDS (its gateway
# died) no longer counts against its key.
SESSION_ALIVE_SECONDS = 10.0
SESSION_GONE_SECONDS = 3 * SESSION_ALIVE_SECONDS

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

    async def refusal(self, services: Services, caller: Caller) -> str | None:
        """Why one more session of `caller` may not start, or None: this gateway's sessions,
        and the key's jobs under way and backlog, as uploads count them."""
        if self.stopping:
            return "This gateway is shutting down; connect again."
        if (full := self._full()) is not None:
            return full
        try:
            await check_limits(services.jobs, self._settings, caller.name, None)
        except HTTPException as refused:
            return str(refused.detail)
        # Asked again after the wait, when other sessions may have started: from here to
        # `holding` nothing awaits, so no session can slip in between.
        return self._full()

    def _full(self) -> str | None:
        if self.total < self._settings.max_live_sessions:
            return None
        return (
            f"This gateway holds {self.total} live sessions, as many as it may"
            " (STT_MAX_LIVE_SESSIONS); try again later."
        )

    async def key_refusal(self, services: Services, caller: Caller, job: Job) -> str | None:
        """Once the session's job exists: why the key holds too many sessions for it, counting
        those begun before it on every gateway, or None."""
        per_key = self._settings.max_live_sessions_per_key
        if caller.name is None:
            return None
        earlier = await services.jobs.count_live_sessions(
            caller.name,
            seen_since=now() - timedelta(seconds=SESSION_GONE_SECONDS),
            created_before=list_key(job),
        )
        if earlier < per_key:
            return None
        return (
            f"The key {caller.name!r} has {earlier} live sessions open, as many as one key may"
            " (STT_MAX_LIVE_SESSIONS_PER_KEY); close one first."
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
