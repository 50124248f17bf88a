"""Callbacks: a finished job is POSTed to the URL its upload named, at least once.

A receiver that cannot be reached, times out, rate-limits (429) or fails (5xx) is tried again
after each of the retry delays; one that refuses the callback (another 4xx, or a redirect) is
not. Each attempt and its outcome are recorded on the job, in `callback`. An attempt is bounded
as a whole (a receiver that answers a byte at a time cannot hold it), and only the status is
read: the receiver's body is never wanted.

The URL comes from whoever uploaded, so the gateway must not become their way into the network
it runs in: the host must pass `shared.addresses` (public, or allowed by name in
STT_CALLBACK_ALLOWED_HOSTS), redirects are not followed, and a failure is recorded without the
detail that would map the network.
"""

import asyncio
import hashlib
import hmac
import logging
import socket
import time

import httpx
from pydantic import SecretStr

from gateway.schemas import JobPublic
from shared.addresses import AddressRefused as CallbackRefused
from shared.addresses import resolve_target
from shared.broker import Broker
from shared.events import Event
from shared.faults import ServiceUnavailable, may_pass
from shared.jobs.models import owes_callback
from shared.jobs.store import JobStore

log = logging.getLogger(__name__)

JOB_ID_HEADER = "X-STT-Job-Id"
SIGNATURE_HEADER = "X-STT-Signature"
USER_AGENT = "stt-pipeline-gateway/1.0"


def callback_client(timeout_seconds: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,  # a proxy from the environment would reach what the address check refused
    )


def signature(secret: SecretStr, body: bytes, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex>`: HMAC-SHA256 of the timestamp, a dot and the body, so that a
    receiver can refuse a call replayed long after it was signed."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.get_secret_value().encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def delivery_failure(error: Exception) -> str:
    """What went wrong, in words that do not tell which hosts and ports answer inside."""
    if isinstance(error, socket.gaierror):
        return "not delivered: the host name did not resolve"
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return "not delivered: no answer in time"
    return "not delivered: could not connect to the receiver"


class CallbackHandler:
    def __init__(
        self,
        jobs: JobStore,
        broker: Broker,
        client: httpx.AsyncClient,
        secret: SecretStr | None,
        allowed_hosts: frozenset[str] = frozenset(),
        attempt_seconds: float = 10,
    ) -> None:
        self._jobs = jobs
        self._broker = broker
        self._client = client
        self._secret = secret
        self._allowed_hosts = frozenset(host.lower() for host in allowed_hosts)
        self._attempt_seconds = attempt_seconds

    async def __call__(self, event: Event) -> None:
        # A job deleted before its callback went out is kept aside until it has.
        job = await self._jobs.get(event.job_id) or await self._jobs.owed_callback(event.job_id)
        # A finished job may be announced twice (delivery is at least once): call back once.
        if job is None or job.callback is None or not owes_callback(job):
            return
        callback = job.callback
        body = JobPublic.of(job).model_dump_json().encode()
        headers = {"Content-Type": "application/json", JOB_ID_HEADER: job.job_id}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, body, int(time.time()))
        try:
            async with asyncio.timeout(self._attempt_seconds):
                response = await self._post(callback.url, body, headers)
        except CallbackRefused as refusal:
            await self._failed(job.job_id, str(refusal), worth_retrying=False)
            return
        except (httpx.HTTPError, OSError) as error:  # TimeoutError is an OSError
            log.info("job %s: callback not delivered: %r", job.job_id, error)
            await self._failed(job.job_id, delivery_failure(error), worth_retrying=True)
            return
        if response.is_success:
            await self._jobs.record_callback(job.job_id, delivered=True)
            log.info("job %s: callback delivered (%d)", job.job_id, response.status_code)
            return
        await self._failed(
            job.job_id,
            f"the receiver answered {response.status_code} {response.reason_phrase}",
            worth_retrying=may_pass(response.status_code),
        )

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST to the checked address and return as soon as the status line and headers are
        in, without reading the receiver's body."""
        target = await resolve_target(url, self._allowed_hosts)
        request = self._client.build_request(
            "POST",
            target.url,
            content=body,
            headers={**headers, **target.headers},
            extensions=target.extensions,
        )
        response = await self._client.send(request, stream=True, follow_redirects=False)
        await response.aclose()
        return response

    async def _failed(self, job_id: str, reason: str, *, worth_retrying: bool) -> None:
        retry = worth_retrying and self._broker.retries_left() > 0
        await self._jobs.record_callback(job_id, delivered=False, error=reason, gave_up=not retry)
        if retry:
            raise ServiceUnavailable(f"callback {reason}")
        log.warning("job %s: callback given up: %s", job_id, reason)
