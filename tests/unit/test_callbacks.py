"""Callback delivery as a plain handler: a job store and broker stand-ins around the real
handler, and a real HTTP listener on loopback."""

import asyncio
import contextlib
import ipaddress
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Literal, cast

import pytest
from pydantic import SecretStr

from gateway.callbacks import SIGNATURE_HEADER, CallbackHandler, callback_client, signature
from scripts.stack import free_port
from shared.addresses import AddressRefused, is_public, resolve_target
from shared.events import TranscriptDone
from shared.faults import ServiceUnavailable
from shared.jobs.models import Callback, JobStatus
from tests.fakes import FakeJobs, a_job
from tests.stand_in import StandIn, http_stand_in

JOB_ID = "a" * 32


class Broker:
    def __init__(self, retries_left: int) -> None:
        self._retries_left = retries_left

    def retries_left(self) -> int:
        return self._retries_left


def finished_job(url: str) -> FakeJobs:
    jobs = FakeJobs()
    jobs.add(a_job(JOB_ID, JobStatus.DONE, text="hello", callback=Callback(url=url)))
    return jobs


@pytest.fixture
def receiver() -> Iterator[StandIn]:
    with http_stand_in({"received": True}) as stand_in:
        yield stand_in


async def deliver(
    url: str,
    allowed: frozenset[str] = frozenset(),
    retries: int = 0,
    *,
    jobs: FakeJobs | None = None,
    secret: str | None = None,
    attempt_seconds: float = 5,
) -> FakeJobs:
    jobs = jobs or finished_job(url)
    signing = SecretStr(secret) if secret else None
    async with callback_client(5) as client:
        handler = CallbackHandler(
            cast(Any, jobs), cast(Any, Broker(retries)), client, signing, allowed, attempt_seconds
        )
        await handler(TranscriptDone(job_id=JOB_ID))
    return jobs


def callback_of(jobs: FakeJobs) -> Callback:
    job = jobs.jobs.get(JOB_ID) or jobs.owed.get(JOB_ID)
    assert job is not None
    assert job.callback is not None
    return job.callback


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.8", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.251", "240.0.0.1", "255.255.255.255", "::1", "::", "fd12::1",
        "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2001:db8::1",
        "64:ff9b::127.0.0.1", "64:ff9b::10.0.0.1", "64:ff9b::169.254.169.254",
        "fec0::1", "feff::1", "64:ff9b:1::8.8.8.8", "64:ff9b:1:ffff::1",
        "2002:7f00:1::1", "2002:a00:1::1", "2002:a9fe:a9fe::1", "::127.0.0.1", "::8.8.8.8",
    ],
)  # fmt: skip
def test_addresses_that_are_not_public_receivers_are_recognised(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8",
        "2002:808:808::1",
    ],
)  # fmt: skip
def test_public_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


async def test_a_callback_to_loopback_is_refused_without_a_connection(receiver: StandIn) -> None:
    jobs = await deliver(receiver.url + "/hook", retries=3)
    assert receiver.connections == 0
    assert callback_of(jobs).gave_up
    assert str(callback_of(jobs).error).startswith("refused: 127.0.0.1 is not a public address")


async def test_an_allowed_host_gets_the_callback(receiver: StandIn) -> None:
    jobs = await deliver(receiver.url + "/hook", allowed=frozenset({"127.0.0.1"}))
    assert receiver.connections == 1
    [sent] = receiver.received
    assert sent.path == "/hook"
    assert callback_of(jobs).delivered_at is not None


async def test_a_proxy_named_in_the_environment_is_not_used(
    receiver: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    with http_stand_in({"proxied": True}) as proxy:
        for variable in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(variable, raising=False)
        for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(variable, proxy.url)
        await deliver(receiver.url + "/hook", allowed=frozenset({"127.0.0.1"}))
    assert proxy.connections == 0
    assert [sent.path for sent in receiver.received] == ["/hook"]


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
    assert callback_of(jobs).error == "not delivered: could not connect to the receiver"
    assert callback_of(jobs).gave_up


async def test_a_redirect_is_not_followed(receiver: StandIn) -> None:
    receiver.failures[:] = [302]
    jobs = await deliver(receiver.url, frozenset({"127.0.0.1"}), retries=3)
    assert len(receiver.received) == 1
    assert callback_of(jobs).gave_up
    assert "302" in str(callback_of(jobs).error)


@contextlib.asynccontextmanager
async def trickling_receiver(slow_part: Literal["head", "body"]) -> AsyncIterator[str]:
    """A receiver that answers 200 a byte at a time: its status line and headers, or its body."""
    body = b"x" * 1000

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            if slow_part == "body":
                writer.write(head)
            for byte in head + body if slow_part == "head" else body:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.2)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/hook"


async def test_a_receiver_answering_a_byte_at_a_time_cannot_hold_an_attempt() -> None:
    async with trickling_receiver("head") as url:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            await deliver(url, frozenset({"127.0.0.1"}), retries=1, attempt_seconds=1)
        took = time.monotonic() - started
    assert took < 3


async def test_the_receivers_body_is_never_read() -> None:
    async with trickling_receiver("body") as url:
        started = time.monotonic()
        jobs = await deliver(url, frozenset({"127.0.0.1"}), attempt_seconds=30)
        took = time.monotonic() - started
    assert callback_of(jobs).delivered_at is not None
    assert took < 3


def documented_verification() -> Callable[..., bool]:
    """The receiver's check, exactly as the callbacks page gives it."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "callbacks.md").read_text()
    match = re.search(r"```python\n(.*?)```", page, re.DOTALL)
    assert match is not None
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)
    check: Callable[..., bool] = namespace["is_genuine"]
    return check


async def test_a_signed_callback_is_verified_by_the_documented_check_and_a_replay_is_not(
    receiver: StandIn,
) -> None:
    await deliver(receiver.url, frozenset({"127.0.0.1"}), secret="hook-s3cret")
    [sent] = receiver.received
    header = sent.headers[SIGNATURE_HEADER]
    is_genuine = documented_verification()
    secret = b"hook-s3cret"
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    assert is_genuine(sent.body, header, secret)
    assert not is_genuine(sent.body + b" ", header, secret)
    assert not is_genuine(sent.body, header, b"another secret")
    an_hour_ago = signature(SecretStr("hook-s3cret"), sent.body, int(time.time()) - 3600)
    assert not is_genuine(sent.body, an_hour_ago, secret)


async def test_a_job_deleted_before_its_callback_went_out_is_still_called_back(
    receiver: StandIn,
) -> None:
    jobs = finished_job(receiver.url + "/hook")
    await jobs.delete(JOB_ID)
    assert JOB_ID not in jobs.jobs
    await deliver(receiver.url + "/hook", frozenset({"127.0.0.1"}), jobs=jobs)
    [sent] = receiver.received
    assert f'"job_id":"{JOB_ID}"' in sent.body.decode()
    assert jobs.owed == {}
