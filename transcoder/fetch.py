"""Media given by URL: fetched into the place of an upload, under the limits an upload has.

The transcoder fetches it once the gateway has answered with the job id, so a slow or broken
origin holds no request of the gateway, and its failure shows in the job like any other. The URL
comes from a client, so every address the fetch goes to (the URL's, then each redirect's) must
pass `shared.addresses`; credentials and schemes other than http and https are refused.
"""

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from shared.addresses import AddressRefused, resolve_target
from shared.jobs.models import ErrorCode, JobFailure
from shared.sniff import SNIFF_BYTES, not_media_reason
from transcoder.settings import TranscoderSettings

log = logging.getLogger(__name__)

USER_AGENT = "stt-pipeline-transcoder/1.0"
ALLOWED_HOSTS_SETTING = "STT_FETCH_ALLOWED_HOSTS"


@dataclass(frozen=True)
class Fetched:
    size_bytes: int
    content_type: str | None


Fetch = Callable[[str, Path], Awaitable[Fetched]]
"""Writes the media at a URL to a path; raises JobFailure when it cannot."""


def fetch_client(settings: TranscoderSettings) -> httpx.AsyncClient:
    window = settings.fetch_rate_window_seconds
    return httpx.AsyncClient(
        # Connecting and each read wait a window at most; the whole fetch, the total timeout.
        timeout=httpx.Timeout(settings.fetch_timeout_seconds, connect=window, read=window),
        follow_redirects=False,  # each hop is checked before it is taken
        trust_env=False,  # a proxy from the environment would reach what the check refused
        # Bytes as sent, so the size limit counts what arrives and nothing inflates after it.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


class MediaFetcher:
    def __init__(self, client: httpx.AsyncClient, settings: TranscoderSettings) -> None:
        self._client = client
        self._timeout = settings.fetch_timeout_seconds
        self._window = settings.fetch_rate_window_seconds
        self._min_rate = settings.fetch_min_bytes_per_second
        self._max_redirects = settings.fetch_max_redirects
        self._max_bytes = settings.max_upload_bytes
        self._allowed_hosts = frozenset(host.lower() for host in settings.fetch_allowed_hosts)

    async def __call__(self, url: str, destination: Path) -> Fetched:
        """Write the media at `url` to `destination`; raises JobFailure, leaving nothing behind."""
        host = httpx.URL(url).host
        try:
            async with asyncio.timeout(self._timeout):
                return await self._follow(httpx.URL(url), destination)
        except BaseException as error:
            await asyncio.to_thread(_discard, destination)
            if isinstance(error, TimeoutError):
                raise JobFailure(
                    ErrorCode.FETCH_FAILED,
                    f"The media at {host} did not arrive within {self._timeout:g} s"
                    " (STT_FETCH_TIMEOUT_SECONDS).",
                ) from error
            if isinstance(error, (httpx.HTTPError, OSError)):
                # The exception's text may name this machine's paths or addresses: it goes to
                # the log, and the job says what happened in words of its own.
                log.info("fetching media from %s failed: %r", host, error)
                failure = _what_failed(error, host, self._window)
                raise JobFailure(ErrorCode.FETCH_FAILED, failure) from error
            raise

    async def _follow(self, url: httpx.URL, destination: Path) -> Fetched:
        for _ in range(self._max_redirects + 1):
            _check_url(url)
            try:
                target = await resolve_target(url, self._allowed_hosts, ALLOWED_HOSTS_SETTING)
            except AddressRefused as refusal:
                raise JobFailure(
                    ErrorCode.FETCH_REFUSED, f"The media was not fetched: {refusal.reason}."
                ) from refusal
            except socket.gaierror as error:
                raise JobFailure(
                    ErrorCode.FETCH_FAILED, f"The host name {url.host} did not resolve."
                ) from error
            request = self._client.build_request(
                "GET", target.url, headers=target.headers, extensions=target.extensions
            )
            try:
                async with asyncio.timeout(self._window):
                    response = await self._client.send(request, stream=True)
            except TimeoutError as error:
                raise httpx.ReadTimeout("no answer", request=request) from error
            try:
                if response.is_redirect:
                    url = _redirected(url, response.headers["location"])
                    continue
                if not response.is_success:
                    raise JobFailure(
                        ErrorCode.FETCH_FAILED,
                        f"{url.host} answered {response.status_code} {response.reason_phrase}"
                        " for the media URL.",
                    )
                return await self._receive(response, destination, url.host)
            finally:
                await response.aclose()
        raise JobFailure(
            ErrorCode.FETCH_FAILED,
            f"The media URL redirects more than {self._max_redirects} times"
            " (STT_FETCH_MAX_REDIRECTS).",
        )

    async def _receive(self, response: httpx.Response, destination: Path, host: str) -> Fetched:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise self._too_large()
        size = 0
        head = bytearray()
        window_started, window_bytes = time.monotonic(), 0
        output = await asyncio.to_thread(_open, destination)
        try:
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > self._max_bytes:
                    raise self._too_large()
                window_bytes += len(chunk)
                elapsed = time.monotonic() - window_started
                if elapsed >= self._window:
                    if window_bytes < self._min_rate * elapsed:
                        raise self._too_slow(host, window_bytes / elapsed)
                    window_started, window_bytes = time.monotonic(), 0
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) == SNIFF_BYTES:
                        _sniff(bytes(head))
                await asyncio.to_thread(output.write, chunk)
        finally:
            await asyncio.to_thread(output.close)
        if size == 0:
            raise JobFailure(ErrorCode.FETCH_FAILED, "The media URL answered with no content.")
        if len(head) < SNIFF_BYTES:
            _sniff(bytes(head))
        return Fetched(size, response.headers.get("content-type"))

    def _too_slow(self, host: str, rate: float) -> JobFailure:
        return JobFailure(
            ErrorCode.FETCH_FAILED,
            f"The media at {host} arrived at {rate / 1024:.1f} KiB/s, slower than the"
            f" {self._min_rate / 1024:g} KiB/s this service waits for"
            " (STT_FETCH_MIN_BYTES_PER_SECOND).",
        )

    def _too_large(self) -> JobFailure:
        return JobFailure(
            ErrorCode.TOO_LARGE,
            f"The media at the URL is larger than the limit of {self._max_bytes} bytes"
            " (STT_MAX_UPLOAD_BYTES).",
        )


def _check_url(url: httpx.URL) -> None:
    if url.scheme not in ("http", "https"):
        raise JobFailure(
            ErrorCode.FETCH_REFUSED,
            f"The media was not fetched: {url.scheme}: is not http or https.",
        )
    if url.userinfo:
        raise JobFailure(
            ErrorCode.FETCH_REFUSED,
            "The media was not fetched: a redirect asked to send a user name or password.",
        )


def _redirected(url: httpx.URL, location: str) -> httpx.URL:
    """Where a redirect from `url` leads; it may not change the scheme (to http from https, so
    that what was asked for privately goes out in the clear, or the other way)."""
    target = url.join(location)
    if target.scheme != url.scheme:
        raise JobFailure(
            ErrorCode.FETCH_REFUSED,
            f"The media was not fetched: {url.host} redirects from {url.scheme} to"
            f" {target.scheme}; give the address it redirects to.",
        )
    return target


def _what_failed(error: BaseException, host: str, window: float) -> str:
    if isinstance(error, httpx.ConnectTimeout):
        return f"{host} did not accept a connection within {window:g} s."
    if isinstance(error, httpx.TimeoutException):
        return (
            f"{host} sent nothing for {window:g} s while the media was fetched"
            " (STT_FETCH_RATE_WINDOW_SECONDS)."
        )
    if isinstance(error, httpx.ConnectError):
        return f"No connection could be made to {host}."
    if isinstance(error, httpx.HTTPError):
        return f"{host} broke off the transfer, or did not answer in HTTP."
    return f"The media from {host} could not be written on this server."


def _sniff(head: bytes) -> None:
    reason = not_media_reason(head)
    if reason is not None:
        raise JobFailure(
            ErrorCode.UNDECODABLE_MEDIA,
            f"The URL gave {reason}, not audio or video; give the address of the media file.",
        )


def _discard(destination: Path) -> None:
    with contextlib.suppress(OSError):
        destination.unlink(missing_ok=True)


def _open(destination: Path) -> IO[bytes]:
    destination.parent.mkdir(parents=True, exist_ok=True)
    return destination.open("wb")
