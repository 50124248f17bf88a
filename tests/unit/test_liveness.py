"""A worker's probes on its metrics port: /livez fails when the event loop stops turning, not
only when the process is gone; /readyz holds while the worker consumes; metrics stay served."""

import asyncio
import contextlib
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from shared import liveness, worker
from shared.broker import Pull, Subscription
from shared.settings import CommonSettings
from shared.worker import Halted, probed, run_worker


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def status_of(port: int, path: str) -> tuple[int, str]:
    """GET `path` on loopback, from the calling thread: never the event loop's."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def until_ready(port: int, within: float = 10) -> tuple[int, str]:
    """Ask /readyz until it answers 200 (the worker may not even listen yet)."""
    deadline = time.monotonic() + within
    answer: tuple[int, str] = (0, "not listening")
    while time.monotonic() < deadline:
        with contextlib.suppress(urllib.error.URLError):
            answer = status_of(port, "/readyz")
            if answer[0] == 200:
                return answer
        time.sleep(0.05)
    raise AssertionError(f"not ready within {within} s: {answer}")


async def test_a_stuck_event_loop_fails_liveness_until_it_turns_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(liveness, "BEAT_SECONDS", 0.05)
    monkeypatch.setattr(liveness, "STALE_AFTER_SECONDS", 1.0)
    port = free_port()
    async with probed(port):
        await asyncio.sleep(0.1)
        assert (await asyncio.to_thread(status_of, port, "/livez"))[0] == 200
        during: list[tuple[int, str]] = []

        def ask_while_blocked() -> None:
            time.sleep(1.8)
            during.append(status_of(port, "/livez"))

        asked = threading.Thread(target=ask_while_blocked)
        asked.start()
        time.sleep(2.5)  # noqa: ASYNC251 - the handler that blocks the loop, on purpose
        await asyncio.to_thread(asked.join)
        await asyncio.sleep(0.2)
        after = await asyncio.to_thread(status_of, port, "/livez")
    [(status, body)] = during
    assert status == 503, body
    assert '"status": "failing"' in body
    assert after[0] == 200, after


async def test_a_worker_is_ready_while_it_consumes_and_serves_metrics_beside_its_probes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    halts: list[Callable[[str], None]] = []

    class Idle:
        async def pull(self, _pull: Pull, on_failure: Callable[[str], None] | None = None) -> None:
            return None

        async def stop_consuming(self, _grace_seconds: float) -> None:
            return None

    @contextlib.asynccontextmanager
    async def connected(_settings: CommonSettings) -> AsyncIterator[tuple[Any, Any]]:
        # Before the broker answers, the worker is alive but not ready.
        assert (await asyncio.to_thread(status_of, port, "/livez"))[0] == 200
        assert (await asyncio.to_thread(status_of, port, "/readyz"))[0] == 503
        yield Idle(), None

    @contextlib.asynccontextmanager
    async def subscriptions(
        _broker: Any, _jobs: Any, halt: Callable[[str], None]
    ) -> AsyncIterator[Sequence[Subscription[Any] | Pull]]:
        halts.append(halt)
        yield [Pull((), limit=lambda: 1)]

    monkeypatch.setattr(worker, "connected", connected)
    settings = CommonSettings(_env_file=None, metrics_port=port)
    running = asyncio.create_task(run_worker("transcoder", settings, subscriptions))
    try:
        ready = await asyncio.to_thread(until_ready, port)
        metrics = await asyncio.to_thread(status_of, port, "/metrics")
        halts[0]("test over")
        with pytest.raises(Halted):
            await running
    finally:
        running.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().remove_signal_handler(signum)
    assert '"phase": "consuming"' in ready[1]
    assert metrics[0] == 200
    assert "stt_slots" in metrics[1]
    # The port is closed again once the worker ends.
    with pytest.raises(urllib.error.URLError):
        status_of(port, "/livez")
