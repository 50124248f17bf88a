"""The limits a deployment sets on what the gateway takes in at once, for everyone and for each
key: past one, a request gets 429 with a time to try again after."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from fastapi import HTTPException

from gateway.settings import GatewaySettings
from gateway.sniff import declared_seconds
from shared.jobs.store import JobStore

BACKLOG_RETRY_AFTER_SECONDS = 30


class UploadsInFlight:
    """How many uploads each key is sending to this gateway process right now."""

    def __init__(self) -> None:
        self._sending: Counter[str] = Counter()

    @contextlib.contextmanager
    def receiving(self, caller: str | None, limit: int) -> Iterator[None]:
        """Count one more upload of `caller` while the body is received; 429 past `limit`."""
        if caller is None:
            yield
            return
        if self._sending[caller] >= limit:
            raise too_busy(
                f"The key {caller!r} is sending {self._sending[caller]} uploads already, as many"
                " as one key may at once (STT_MAX_UPLOADS_PER_KEY); send this one when one has"
                " arrived.",
                headers={"Connection": "close"},
            )
        self._sending[caller] += 1
        try:
            yield
        finally:
            self._sending[caller] -= 1


async def check_limits(
    jobs: JobStore, settings: GatewaySettings, caller: str | None, upload: Path | None
) -> float | None:
    """Raise 429 if the upload would take the service, or its caller's key, past a limit the
    deployment set; return its length as its container declares it, when a limit needs it.
    Media given by URL (`upload` None) counts as no audio until it is fetched; how many such
    jobs a key may have waiting is limited instead."""
    if caller is not None and upload is None:
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
