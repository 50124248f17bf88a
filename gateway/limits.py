"""The limits a deployment sets on what the gateway takes in at once, for everyone and for each
key: past one, a request gets 429 with a time to try again after."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi import HTTPException

from gateway.settings import GatewaySettings
from shared.jobs.models import JobFailure
from shared.jobs.store import JobStore
from shared.probe import probe_audio

BACKLOG_RETRY_AFTER_SECONDS = 30


class InFlight:
    """How many requests of one kind (uploads being sent, waits on jobs) each key has open on
    this gateway process right now. A key past its limit gets 429 at once, so one key cannot
    hold a process's connections and memory however many it opens."""

    def __init__(self, doing: str, advice: str, setting: str) -> None:
        self._open: Counter[str] = Counter()
        self._doing = doing  # "is sending {n} uploads"
        self._advice = advice
        self._setting = setting

    def enter(self, caller: str | None, limit: int, **headers: str) -> Callable[[], None]:
        """Count one more of `caller`'s requests, or raise 429 past `limit`; returns what ends
        it, which may be called more than once."""
        if caller is None:
            return lambda: None
        if self._open[caller] >= limit:
            raise too_busy(
                f"The key {caller!r} {self._doing.format(n=self._open[caller])} already, as many"
                f" as one key may at once ({self._setting}); {self._advice}",
                headers=headers,
            )
        self._open[caller] += 1
        ended = False

        def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                self._open[caller] -= 1
                if not self._open[caller]:
                    del self._open[caller]

        return end

    @contextlib.contextmanager
    def holding(self, caller: str | None, limit: int, **headers: str) -> Iterator[None]:
        """One more of `caller`'s requests for the body of the `with`."""
        end = self.enter(caller, limit, **headers)
        try:
            yield
        finally:
            end()


def uploads_in_flight() -> InFlight:
    return InFlight(
        "is sending {n} uploads",
        "send this one when one has arrived.",
        "STT_MAX_UPLOADS_PER_KEY",
    )


def waits_in_flight() -> InFlight:
    return InFlight(
        "is following or waiting on {n} jobs",
        "close a stream or wait for an answer first, or poll GET /v1/jobs/{job_id}.",
        "STT_MAX_WAITS_PER_KEY",
    )


async def check_limits(
    jobs: JobStore,
    settings: GatewaySettings,
    caller: str | None,
    upload: Path | None,
    *,
    by_url: bool = False,
) -> float | None:
    """Raise 429 if a new job would take the service, or its caller's key, past a limit the
    deployment set; return the upload's length as its container declares it, when a limit needs
    it. A job without an upload (a live session, or media `by_url`) counts as no audio; how many
    jobs a key may have waiting for their media URL to be fetched is limited instead."""
    if caller is not None and by_url:
        unfetched = await jobs.count_unfetched(caller)
        if unfetched >= settings.max_fetches_per_key:
            raise too_busy(
                f"The key {caller!r} has {unfetched} jobs whose media is still to be fetched, as"
                " many as one key may (STT_MAX_FETCHES_PER_KEY); try again once one has arrived."
            )
    if caller is not None and settings.max_jobs_per_key is not None:
        under_way = await jobs.count_unfinished(caller)
        if under_way >= settings.max_jobs_per_key:
            raise too_busy(
                f"The key {caller!r} has {under_way} jobs under way, as many as one key may"
                " (STT_MAX_JOBS_PER_KEY); try again once one has finished."
            )
    limits: list[tuple[float | None, str | None, str, str]] = [
        (settings.max_backlog_seconds, None, "The service", "STT_MAX_BACKLOG_SECONDS")
    ]
    if caller is not None:
        limits.append(
            (
                settings.max_backlog_seconds_per_key,
                caller,
                f"The key {caller!r}",
                "STT_MAX_BACKLOG_SECONDS_PER_KEY",
            )
        )
    if all(limit is None for limit, *_ in limits):
        return None
    seconds = await asyncio.to_thread(declared_seconds, upload) if upload else None
    for limit, owner, who, setting in limits:
        if limit is None:
            continue
        queued = await jobs.queued_audio_seconds(owner)
        if queued + (seconds or 0.0) > limit:
            raise too_busy(
                f"{who} has {queued:.0f} s of audio waiting, and may have at most {limit:.0f} s"
                f" ({setting}); try again later."
            )
    return seconds


def too_busy(message: str, headers: dict[str, str] | None = None) -> HTTPException:
    retry = {"Retry-After": str(BACKLOG_RETRY_AFTER_SECONDS)}
    return HTTPException(429, message, headers={**retry, **(headers or {})})


def declared_seconds(path: Path) -> float | None:
    """How long the upload says it lasts; None when it does not say or cannot be read: the
    transcoder has the last word on such files."""
    try:
        return probe_audio(path)
    except JobFailure:
        return None
