"""Callback delivery as a plain handler: a job store and broker stand-ins around the real
handler, and a real HTTP listener on loopback."""

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.callbacks import CallbackHandler
from scripts.stack import free_port
from shared.addresses import AddressRefused, is_public, resolve_target
from shared.events import TranscriptDone
from shared.faults import ServiceUnavailable
from shared.jobs import Callback, Job, JobStatus, now
from tests.stand_in import StandIn, http_stand_in

JOB_ID = "a" * 32


class Jobs:
    """The two job-store calls the callback handler makes, on one job kept in memory."""

    def __init__(self, callback_url: str) -> None:
        moment = now()
        self.job = Job(
            job_id=JOB_ID,
            status=JobStatus.DONE,
            filename="talk.wav",
            size_bytes=1000,
            engine="faster-whisper",
            language="en",
            created_at=moment,
            updated_at=moment,
            text="hello",
            callback=Callback(url=callback_url),
        )

    async def get(self, job_id: str) -> Job | None:
        return self.job if job_id == JOB_ID else None

    async def record_callback(
        self, job_id: str, *, delivered: bool, error: str | None = None, gave_up: bool = False
    ) -> None:
        assert self.job.callback is not None
        callback = self.job.callback.model_copy(
            update={
                "attempts": self.job.callback.attempts + 1,
                "error": error,
                "gave_up": gave_up,
                "delivered_at": now() if delivered else None,
            }
        )
        self.job = self.job.model_copy(update={"callback": callback})


class Broker:
    def __init__(self, retries_left: int) -> None:
        self._retries_left = retries_left

    def retries_left(self) -> int:
        return self._retries_left


@pytest.fixture
def receiver() -> Iterator[StandIn]:
    with http_stand_in({"received": True}) as stand_in:
        yield stand_in


async def deliver(url: str, allowed: frozenset[str] = frozenset(), retries: int = 0) -> Jobs:
    jobs = Jobs(url)
    async with httpx.AsyncClient(timeout=5) as client:
        handler = CallbackHandler(jobs, Broker(retries), client, None, allowed)  # type: ignore[arg-type]
        await handler(TranscriptDone(job_id=JOB_ID))
    return jobs


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.8", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.251", "240.0.0.1", "255.255.255.255", "::1", "::", "fd12::1",
        "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2001:db8::1",
    ],
)  # fmt: skip
def test_addresses_that_are_not_public_receivers_are_recognised(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


async def test_a_callback_to_loopback_is_refused_without_a_connection(receiver: StandIn) -> None:
    jobs = await deliver(receiver.url + "/hook", retries=3)
    assert receiver.connections == 0
    assert jobs.job.callback is not None
    assert jobs.job.callback.gave_up
    assert jobs.job.callback.error is not None
    assert jobs.job.callback.error.startswith("refused: 127.0.0.1 is not a public address")


async def test_an_allowed_host_gets_the_callback(receiver: StandIn) -> None:
    jobs = await deliver(receiver.url + "/hook", allowed=frozenset({"127.0.0.1"}))
    assert receiver.connections == 1
    [sent] = receiver.received
    assert sent.path == "/hook"
    assert jobs.job.callback is not None
    assert jobs.job.callback.delivered_at is not None


async def test_a_name_is_checked_by_every_address_it_resolves_to(receiver: StandIn) -> None:
    with pytest.raises(AddressRefused):
        await resolve_target(receiver.url.replace("127.0.0.1", "localhost"), frozenset())
    allowed = await resolve_target("http://LocalHost:1/x", frozenset({"localhost"}))
    assert allowed.url.host == "localhost"


def answering(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    """DNS, stood in: every name resolves to `addresses`."""

    async def getaddrinfo(_host: str, port: int, **_options: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)


async def test_a_public_name_is_called_at_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answering(monkeypatch, "93.184.215.14")
    target = await resolve_target("https://hooks.example.com:8443/hook?a=1", frozenset())
    url = target.url
    assert (url.host, url.port, url.path, url.query) == ("93.184.215.14", 8443, "/hook", b"a=1")
    assert target.headers == {"Host": "hooks.example.com:8443"}
    assert target.extensions == {"sni_hostname": "hooks.example.com"}


async def test_a_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answering(monkeypatch, "93.184.215.14", "10.0.0.5")
    with pytest.raises(AddressRefused):
        await resolve_target("https://hooks.example.com/hook", frozenset())


async def test_an_unreachable_receiver_is_retried_and_its_error_maps_nothing() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(ServiceUnavailable):
        await deliver(url, frozenset({"127.0.0.1"}), retries=1)
    jobs = await deliver(url, frozenset({"127.0.0.1"}))
    assert jobs.job.callback is not None
    assert jobs.job.callback.error == "not delivered: could not connect to the receiver"
    assert jobs.job.callback.gave_up


async def test_a_redirect_is_not_followed(receiver: StandIn) -> None:
    receiver.failures[:] = [302]
    jobs = await deliver(receiver.url, frozenset({"127.0.0.1"}), retries=3)
    assert len(receiver.received) == 1
    assert jobs.job.callback is not None
    assert jobs.job.callback.gave_up
    assert "302" in str(jobs.job.callback.error)
