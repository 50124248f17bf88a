"""Media by URL through the running services: the gateway answers with the job id at once, the
transcoder fetches the media from a web server on loopback (allowed by STT_FETCH_ALLOWED_HOSTS,
as written: 127.0.0.1, not localhost) and the job ends done with the words, or failed with the
fetch's code."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import media
from tests.integration.api import until_status
from tests.integration.conftest import ONLY_WHISPER, RunningSystem, stack_fixture
from tests.media_server import MediaServer, media_server

ROOT = Path(__file__).resolve().parents[2]
MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # as `launched` sets it
FETCH_TIMEOUT_SECONDS = 3


system = stack_fixture(
    "fetch",
    engines=ONLY_WHISPER,
    recognizer_slots=1,
    fetch_allowed_hosts="127.0.0.1",
    fetch_timeout_seconds=FETCH_TIMEOUT_SECONDS,
)


@pytest.fixture
def server(clips: dict[str, Path]) -> Iterator[MediaServer]:
    with media_server(clips["mp3"].read_bytes(), big_bytes=MAX_UPLOAD_BYTES + 1) as running:
        yield running


async def fetched_job(system: RunningSystem, url: str, route: str = "/v1/jobs") -> dict[str, Any]:
    """The job made from `url`, once it has ended."""
    async with system.client() as client:
        started = time.monotonic()
        accepted = await client.post(route, files={"url": (None, url)})
        assert accepted.status_code in (200, 202), accepted.text
        assert time.monotonic() - started < 2  # answered before any fetch
        return await until_status(client, accepted.json()["job_id"], within=60)


@pytest.mark.parametrize("route", ["/v1/jobs", "/stt/task"])
async def test_media_at_an_allowed_url_is_transcribed(
    system: RunningSystem, server: MediaServer, route: str
) -> None:
    job = await fetched_job(system, server.at("/media"), route)
    assert job["status"] == "done", job["error"]
    assert set(media.EXPECTED_WORDS) <= media.words_of(job["text"])
    assert (job["size_bytes"], job["content_type"]) == (len(server.media), "audio/mpeg")
    assert job["source_url"] == server.at("/media")
    assert server.paths == ["/media"]


async def test_the_same_server_by_a_name_not_allowed_is_never_contacted(
    system: RunningSystem, server: MediaServer
) -> None:
    job = await fetched_job(system, server.at("/media", host="localhost"))
    assert job["status"] == "failed"
    assert job["error"]["code"] == "fetch_refused"
    assert "localhost is not a public address" in job["error"]["message"]
    assert server.connections == 0


async def test_a_redirect_to_a_refused_address_is_refused(
    system: RunningSystem, server: MediaServer
) -> None:
    elsewhere = server.at("/media", host="localhost")
    job = await fetched_job(system, server.at(f"/redirect?to={elsewhere}"))
    assert job["error"]["code"] == "fetch_refused"
    assert server.paths == [f"/redirect?to={elsewhere}"]


async def test_media_over_the_size_limit_fails_too_large(
    system: RunningSystem, server: MediaServer
) -> None:
    job = await fetched_job(system, server.at("/big"))
    assert job["error"]["code"] == "too_large"
    assert str(MAX_UPLOAD_BYTES) in job["error"]["message"]


async def test_a_stalling_server_fails_within_the_timeout(
    system: RunningSystem, server: MediaServer
) -> None:
    started = time.monotonic()
    job = await fetched_job(system, server.at("/stall"))
    assert time.monotonic() - started < FETCH_TIMEOUT_SECONDS + 5
    assert job["error"]["code"] == "fetch_failed"
    assert f"within {FETCH_TIMEOUT_SECONDS} s" in job["error"]["message"]


async def test_a_missing_file_fails_with_the_servers_answer(
    system: RunningSystem, server: MediaServer
) -> None:
    job = await fetched_job(system, server.at("/missing"))
    assert job["error"] == {
        "code": "fetch_failed",
        "message": "127.0.0.1 answered 404 Not Found for the media URL.",
    }


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"url": (None, "http://user:pw@127.0.0.1/media")}, "user name or password"),
        ({"url": (None, "http://127.0.0.1/media"), "file": ("a.mp3", None)}, "not both"),
    ],
)
async def test_bad_requests_are_refused_at_once(
    system: RunningSystem, server: MediaServer, form: dict[str, Any], message: str
) -> None:
    if "file" in form:
        form = {**form, "file": ("a.mp3", server.media)}
    async with system.client() as client:
        before = (await client.get("/v1/jobs")).json()["jobs"]
        response = await client.post("/v1/jobs", files=form)
        after = (await client.get("/v1/jobs")).json()["jobs"]
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert after == before
    assert server.connections == 0


async def test_the_api_document_offers_url_instead_of_file(system: RunningSystem) -> None:
    async with httpx.AsyncClient(base_url=system.base_url) as client:
        document = (await client.get("/openapi.json")).json()
    body = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["oneOf"] == [{"required": ["file"]}, {"required": ["url"]}]


async def test_the_command_line_takes_urls_beside_files(
    system: RunningSystem, server: MediaServer, tmp_path: Path
) -> None:
    fetched, refused = server.at("/media/ep%2012.mp3"), server.at("/media/x.mp3", host="localhost")
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "cli",
            "transcribe",
            fetched,
            refused,
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "STT_URL": system.base_url},
        cwd=ROOT,
        timeout=120,
    )
    said = " ".join(result.stderr.split())  # as the terminal wrapped it
    assert result.returncode == 1
    assert f"{refused}: The media was not fetched: localhost is not a public" in said
    written = (tmp_path / "ep 12.txt").read_text()
    assert set(media.EXPECTED_WORDS) <= media.words_of(written)
