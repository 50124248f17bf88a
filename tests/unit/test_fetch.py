"""Fetching media by URL, as the transcoder does: the real fetcher against a real web server on
loopback, with the address rules, limits and timeout it runs under."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.stack import free_port
from shared.events import AudioReady, JobFailed, MediaUploaded
from shared.jobs.models import ErrorCode, JobFailure, JobStatus
from shared.media import MediaPaths
from shared.media_store import FolderStore
from tests.fakes import FakeJobs, a_job
from tests.media_server import MediaServer, media_server
from transcoder.fetch import Fetched, MediaFetcher, _redirected, fetch_client
from transcoder.handler import TranscodeHandler
from transcoder.settings import TranscoderSettings

LIMIT = 256 * 1024
JOB_ID = "f" * 32


@pytest.fixture
def server(clips: dict[str, Path]) -> Iterator[MediaServer]:
    with media_server(clips["mp3"].read_bytes(), big_bytes=LIMIT + 1) as running:
        yield running


def fetch_settings(tmp_path: Path, **values: Any) -> TranscoderSettings:
    defaults: dict[str, Any] = {
        "media_dir": tmp_path,
        "max_upload_bytes": LIMIT,
        "fetch_allowed_hosts": ("127.0.0.1",),
        "fetch_timeout_seconds": 2,
    }
    return TranscoderSettings(**{**defaults, **values})


async def fetch(url: str, destination: Path, **settings: Any) -> Fetched:
    configured = fetch_settings(destination.parent, **settings)
    async with fetch_client(configured) as client:
        return await MediaFetcher(client, configured)(url, destination)


async def refused(url: str, destination: Path, **settings: Any) -> JobFailure:
    with pytest.raises(JobFailure) as failure:
        await fetch(url, destination, **settings)
    assert not await asyncio.to_thread(destination.exists)
    return failure.value


async def test_media_from_an_allowed_host_arrives_whole(
    server: MediaServer, tmp_path: Path
) -> None:
    destination = tmp_path / "upload"
    fetched = await fetch(server.at("/media"), destination)
    assert destination.read_bytes() == server.media
    assert fetched == Fetched(len(server.media), "audio/mpeg")


async def test_a_host_not_allowed_is_refused_without_a_connection(
    server: MediaServer, tmp_path: Path
) -> None:
    failure = await refused(server.at("/media"), tmp_path / "upload", fetch_allowed_hosts=())
    assert failure.code is ErrorCode.FETCH_REFUSED
    assert "127.0.0.1 is not a public address" in failure.message
    assert "STT_FETCH_ALLOWED_HOSTS" in failure.message
    assert server.connections == 0


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://localhost:{port}/media",  # the same server, by a name not allowed
        "http://10.0.0.1/media",
    ],
)
async def test_a_redirect_to_a_refused_address_is_refused(
    server: MediaServer, tmp_path: Path, target: str
) -> None:
    port = server.url.rsplit(":", 1)[1]
    url = server.at(f"/redirect?to={target.format(port=port)}")
    failure = await refused(url, tmp_path / "upload")
    assert failure.code is ErrorCode.FETCH_REFUSED
    assert server.paths == [f"/redirect?to={target.format(port=port)}"]


async def test_a_redirect_to_an_allowed_address_is_followed(
    server: MediaServer, tmp_path: Path
) -> None:
    destination = tmp_path / "upload"
    await fetch(server.at(f"/redirect?to={server.at('/media')}"), destination)
    assert destination.read_bytes() == server.media


async def test_redirects_past_the_limit_fail(server: MediaServer, tmp_path: Path) -> None:
    hop = server.at("/media")
    for _ in range(3):
        hop = server.at(f"/redirect?to={hop.replace('?', '%3F').replace('=', '%3D')}")
    failure = await refused(hop, tmp_path / "upload", fetch_max_redirects=2)
    assert failure.code is ErrorCode.FETCH_FAILED
    assert "more than 2 times" in failure.message


async def test_a_redirect_with_credentials_is_refused(server: MediaServer, tmp_path: Path) -> None:
    url = server.at("/redirect?to=http://user:secret@127.0.0.1/media")
    failure = await refused(url, tmp_path / "upload")
    assert failure.code is ErrorCode.FETCH_REFUSED
    assert "user name or password" in failure.message


@pytest.mark.parametrize("path", ["/big", "/big-declared"])
async def test_media_over_the_size_limit_fails_too_large(
    server: MediaServer, tmp_path: Path, path: str
) -> None:
    failure = await refused(server.at(path), tmp_path / "upload")
    assert failure.code is ErrorCode.TOO_LARGE
    assert f"{LIMIT} bytes" in failure.message


@pytest.mark.parametrize("path", ["/stall", "/trickle"])
async def test_a_stalling_or_trickling_server_fails_within_the_timeout(
    server: MediaServer, tmp_path: Path, path: str
) -> None:
    started = time.monotonic()
    failure = await refused(server.at(path), tmp_path / "upload", fetch_timeout_seconds=1)
    assert time.monotonic() - started < 3
    assert failure.code is ErrorCode.FETCH_FAILED
    assert "did not arrive within 1 s" in failure.message


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("/missing", ErrorCode.FETCH_FAILED, "answered 404 Not Found"),
        ("/page", ErrorCode.UNDECODABLE_MEDIA, "gave text, not audio or video"),
    ],
)
async def test_what_is_not_media_fails_with_a_reason(
    server: MediaServer, tmp_path: Path, path: str, code: ErrorCode, message: str
) -> None:
    failure = await refused(server.at(path), tmp_path / "upload")
    assert failure.code is code
    assert message in failure.message


async def test_a_host_that_does_not_resolve_fails(tmp_path: Path) -> None:
    failure = await refused("http://no-such-host.invalid/a.mp3", tmp_path / "upload")
    assert failure.code is ErrorCode.FETCH_FAILED
    assert "did not resolve" in failure.message


class Published(list[Any]):
    async def __call__(self, event: Any) -> None:
        self.append(event)


@pytest.fixture
async def handler(tmp_path: Path) -> AsyncIterator[tuple[TranscodeHandler, FakeJobs, Published]]:
    jobs, published = FakeJobs(), Published()
    settings = fetch_settings(tmp_path)
    with ThreadPoolExecutor(2) as executor:
        async with fetch_client(settings) as client:
            fetcher = MediaFetcher(client, settings)
            store = FolderStore(MediaPaths(tmp_path))
            yield (
                TranscodeHandler(jobs, store, executor, published, settings, fetcher),  # type: ignore[arg-type]
                jobs,
                published,
            )


async def test_the_transcoder_fetches_a_jobs_media_then_converts_it(
    server: MediaServer, handler: tuple[TranscodeHandler, FakeJobs, Published]
) -> None:
    transcode, jobs, published = handler
    jobs.add(a_job(JOB_ID, JobStatus.QUEUED, source_url=server.at("/media"), size_bytes=0))
    assert await transcode(MediaUploaded(job_id=JOB_ID)) is None
    [ready] = published
    assert isinstance(ready, AudioReady)
    assert ready.duration_seconds > 1
    job = jobs.jobs[JOB_ID]
    assert (job.size_bytes, job.content_type) == (len(server.media), "audio/mpeg")


async def test_a_failed_fetch_fails_the_job_with_its_code(
    server: MediaServer, handler: tuple[TranscodeHandler, FakeJobs, Published]
) -> None:
    transcode, jobs, published = handler
    jobs.add(a_job(JOB_ID, JobStatus.QUEUED, source_url=server.at("/missing"), size_bytes=0))
    ended = await transcode(MediaUploaded(job_id=JOB_ID))
    assert isinstance(ended, JobFailed)
    assert ended.code == "fetch_failed"
    assert jobs.jobs[JOB_ID].status is JobStatus.FAILED
    assert published == []


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/trickle", "slower than the 2 KiB/s"),
        ("/stall", "sent nothing for 0.5 s"),
        ("/silent", "sent nothing for 0.5 s"),
    ],
)
async def test_a_server_too_slow_for_the_minimum_rate_fails_long_before_the_timeout(
    server: MediaServer, tmp_path: Path, path: str, message: str
) -> None:
    started = time.monotonic()
    failure = await refused(
        server.at(path),
        tmp_path / "upload",
        fetch_timeout_seconds=60,
        fetch_rate_window_seconds=0.5,
        fetch_min_bytes_per_second=2048,
    )
    assert time.monotonic() - started < 3
    assert failure.code is ErrorCode.FETCH_FAILED
    assert message in failure.message


async def test_media_that_arrives_fast_enough_is_not_cut_off(
    server: MediaServer, tmp_path: Path
) -> None:
    destination = tmp_path / "upload"
    await fetch(
        server.at("/media"),
        destination,
        fetch_rate_window_seconds=0.2,
        fetch_min_bytes_per_second=64 * 1024,
    )
    assert destination.read_bytes() == server.media


@pytest.mark.parametrize(
    ("start", "location"),
    [
        ("https://media.example/a.mp3", "http://media.example/a.mp3"),
        ("https://media.example/a.mp3", "//other.example/a.mp3"),  # keeps https: followed
        ("http://media.example/a.mp3", "https://media.example/a.mp3"),
    ],
)
def test_a_redirect_may_not_change_the_scheme(start: str, location: str) -> None:
    original = httpx.URL(start)
    if location.startswith("//"):
        assert _redirected(original, location).scheme == original.scheme
        return
    with pytest.raises(JobFailure) as failure:
        _redirected(original, location)
    assert failure.value.code is ErrorCode.FETCH_REFUSED
    assert "redirects from" in failure.value.message


async def test_a_redirect_from_http_to_https_is_refused_before_it_is_taken(
    server: MediaServer, tmp_path: Path
) -> None:
    url = server.at(f"/redirect?to={server.at('/media').replace('http:', 'https:')}")
    failure = await refused(url, tmp_path / "upload")
    assert failure.code is ErrorCode.FETCH_REFUSED
    assert len(server.paths) == 1


async def test_a_failed_fetch_names_no_paths_and_no_exception_text(
    server: MediaServer, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the upload's folder should be")
    unwritable = await refused(server.at("/media"), blocked / "upload")
    closed_port = f"http://127.0.0.1:{free_port()}/a.mp3"
    unreachable = await refused(closed_port, tmp_path / "upload")
    for failure in (unwritable, unreachable):
        assert failure.code is ErrorCode.FETCH_FAILED
        assert str(tmp_path) not in failure.message
        assert "Errno" not in failure.message
    assert unreachable.message == "No connection could be made to 127.0.0.1."
