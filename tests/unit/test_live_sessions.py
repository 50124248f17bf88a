"""A gateway's count of its live sessions holds when many connect at once: the limits that ask
the job store make a session wait, and sessions that pass meanwhile are counted before it."""

import asyncio
import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gateway.auth import Caller
from gateway.live import admission
from gateway.live.sessions import LiveSessions
from gateway.settings import GatewaySettings

ANYONE = Caller(None, sees_all=True)


class Session:
    def stop(self) -> None:
        pass


async def test_sessions_connecting_at_once_are_held_to_the_gateways_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def a_round_trip(*_args: Any) -> None:
        await asyncio.sleep(0.01)  # as the job store's counts take

    monkeypatch.setattr(admission, "check_limits", a_round_trip)
    settings = GatewaySettings(media_dir=tmp_path, max_live_sessions=2)
    sessions = LiveSessions(settings)
    services = cast(Any, SimpleNamespace(jobs=None, settings=settings))
    held = contextlib.ExitStack()
    refusals: list[str] = []

    async def connect() -> None:
        refusal = await admission.opening_refusal(sessions, services, ANYONE)
        if refusal is None:
            held.enter_context(sessions.holding(Session()))
        else:
            refusals.append(refusal)

    with held:
        await asyncio.gather(*(connect() for _ in range(6)))
        assert sessions.total == 2
    assert len(refusals) == 4
    assert all("STT_MAX_LIVE_SESSIONS" in refusal for refusal in refusals)
