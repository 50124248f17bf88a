"""Media given by URL: fetched into the place of an upload, under the limits an upload has.

The transcoder fetches it once the gateway has answered with the job id, so a slow or broken
origin holds no request of the gateway, and its failure shows in the job like any other. The URL
comes from a client, so every address the fetch goes to (the URL's, then each redirect's) must
pass `shared.addresses`; credentials and schemes other than http and https are refused.
"""

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from shared.addresses import AddressRefused, resolve_target
from shared.jobs.models import ErrorCode, JobFailure
from shared.sniff import SNIFF_BYTES, not_media_reason
from transcoder.settings import TranscoderSettings

USER_AGENT = "stt-pipeline-transcoder/1.0"
ALLOWED_HOSTS_SETTING = "STT_FETCH_ALLOWED_HOSTS"


@dataclass(frozen=True)
class Fetched:
    size_bytes: int
    content_type: str | None


Fetch = Callable[[str, Path], Awaitable[Fetched]]
"""Writes the media at a URL to a path; raises JobFailure when it cannot."""


def fetch_client(settings: TranscoderSettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=settings.fetch_timeout_seconds,
        follow_redirects=False,  # each hop is checked before it is taken
        trust_env=False,  # a proxy from the environment would reach what the check refused
        # Bytes as sent, so the size limit counts what arrives and nothing inflates after it.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


class MediaFetcher:
    def __init__(self, client: httpx.AsyncClient, settings: TranscoderSettings) -> None:
        self._client = client
        self._timeout = settings.fetch_timeout_seconds
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
            await asyncio.to_thread(destination.unlink, missing_ok=True)
            if isinstance(error, (TimeoutError, httpx.TimeoutException)):
                raise JobFailure(
                    ErrorCode.FETCH_FAILED,
                    f"The media at {host} did not arrive within {self._timeout:g} s"
                    " (STT_FETCH_TIMEOUT_SECONDS).",
                ) from error
            if isinstance(error, (httpx.HTTPError, OSError)):
                raise JobFailure(
                    ErrorCode.FETCH_FAILED, f"The media could not be fetched from {host}: {error}."
                ) from error
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
            response = await self._client.send(request, stream=True)
            try:
                if response.is_redirect:
                    url = url.join(response.headers["location"])
                    continue
                if not response.is_success:
                    raise JobFailure(
                        ErrorCode.FETCH_FAILED,
                        f"{url.host} answered {response.status_code} {response.reason_phrase}"
                        " for the media URL.",
                    )
                return await self._receive(response, destination)
            finally:
                await response.aclose()
        raise JobFailure(
            ErrorCode.FETCH_FAILED,
            f"The media URL redirects more than {self._max_redirects} times"
            " (STT_FETCH_MAX_REDIRECTS).",
        )

    async def _receive(self, response: httpx.Response, destination: Path) -> Fetched:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise self._too_large()
        size = 0
        head = bytearray()
        output = await asyncio.to_thread(_open, destination)
        try:
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > self._max_bytes:
                    raise self._too_large()
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


def _sniff(head: bytes) -> None:
    reason = not_media_reason(head)
    if reason is not None:
        raise JobFailure(
            ErrorCode.UNDECODABLE_MEDIA,
            f"The URL gave {reason}, not audio or video; give the address of the media file.",
        )


def _open(destination: Path) -> IO[bytes]:
    destination.parent.mkdir(parents=True, exist_ok=True)
    return destination.open("wb")
