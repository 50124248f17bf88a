"""Hostile and odd input: each gets a clear 4xx or a job that ends with its code; never a 5xx,
a hang or a crashed worker, and no file stays behind after cleanup."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.media import MediaPaths
from tests import hostile_media, media
from tests.integration.api import accepted_job_id, until_status
from tests.integration.conftest import CLEANUP_DELAY_SECONDS, RunningSystem


@pytest.fixture(autouse=True)
async def workers_survive(system: RunningSystem) -> AsyncIterator[None]:
    """After each hostile input, every service still runs and the gateway is ready."""
    yield
    system.stack.raise_if_exited()
    async with system.client() as client:
        assert (await client.get("/readyz")).status_code == 200


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("../../etc/passwd", "audio/mpeg"),
        ("evil\x01\x1bname\r\n.mp3", "audio/mpeg"),
        ("x" * 1000 + ".mp3", "audio/mpeg"),
        ("会議の録音 запись.mp3", "audio/mpeg"),
        ("speech.mp3", "text/plain"),
    ],
)
async def test_odd_names_and_lying_types_do_not_matter_for_real_media(
    system: RunningSystem, clips: dict[str, Path], filename: str, content_type: str
) -> None:
    async with system.client() as client:
        response = await client.post(
            "/v1/jobs", files={"file": (filename, clips["mp3"].read_bytes(), content_type)}
        )
        assert response.status_code == 202, response.text
        job = await until_status(client, response.json()["job_id"])
    assert job["status"] == "done"
    assert "quarterly" in media.words_of(job["text"])
    # Nothing anywhere near the media folder is named after what the client sent.
    root = Path(system.settings.media_dir).parent
    sent_name = Path(filename.replace("\x00", "")).name
    assert await asyncio.to_thread(named, root, sent_name) == []


def named(root: Path, name: str) -> list[Path]:
    return [path for path in root.rglob("*") if path.name == name]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"just words\n" * 20, "audio/mpeg", 415),
        (PDF, "audio/wav", 415),
        (b"\x89PNG\r\n\x1a\n" + bytes(500), "video/mp4", 415),
    ],
)
async def test_content_that_is_plainly_not_media_is_refused_whatever_its_type(
    system: RunningSystem, content: bytes, content_type: str, status: int
) -> None:
    async with system.client() as client:
        response = await client.post(
            "/v1/jobs", files={"file": ("talk.mp3", content, content_type)}
        )
    assert response.status_code == status
    assert "not audio or video" in response.json()["detail"]


async def test_two_files_are_refused(system: RunningSystem, clips: dict[str, Path]) -> None:
    wav = clips["wav"].read_bytes()
    async with system.client() as client:
        response = await client.post(
            "/v1/jobs", files=[("file", ("a.wav", wav)), ("file", ("b.wav", wav))]
        )
    assert response.status_code == 400
    assert "exactly one file" in response.json()["detail"]


async def test_a_refusal_reaches_a_client_that_reads_it_only_after_sending_everything(
    system: RunningSystem,
) -> None:
    """The gateway judges a file by its first bytes; a connection closed with the rest of the
    body unread would be reset, and the reset would take the answer with it."""
    port = int(system.base_url.rsplit(":", 1)[1])
    picture = b"\x89PNG\r\n\x1a\n" + bytes(512 * 1024)
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        + picture
        + b"\r\n--b--\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/jobs HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    await asyncio.sleep(1)  # the answer and whatever follows it are in by now
    try:
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 415 ")
    assert b"not audio or video" in answer


async def test_an_oversized_stream_is_cut_off_and_nothing_kept(system: RunningSystem) -> None:
    """Sent chunked, without a length, so the gateway finds out only while reading; then it
    answers 413 and closes the connection instead of reading the rest."""
    limit = 5 * 1024 * 1024
    uploads = Path(system.settings.media_dir) / "uploads"
    before = set(uploads.iterdir())
    port = int(system.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/jobs HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        + chunked(b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n')
    )
    block = chunked(b"RIFF" + bytes(256 * 1024))
    sent = 0
    try:
        while sent < 20 * limit:
            writer.write(block)
            await asyncio.wait_for(writer.drain(), 10)
            sent += len(block)
    except (ConnectionResetError, BrokenPipeError):
        pass
    try:
        answer: bytes | None = await asyncio.wait_for(reader.read(200), 10)
    except ConnectionResetError:
        answer = None  # a reset may overtake the answer; clients that must see it send a length
    writer.close()
    assert sent < 4 * limit, f"the gateway read {sent} bytes of an upload limited to {limit}"
    assert answer is None or answer.startswith(b"HTTP/1.1 413"), answer
    assert set(uploads.iterdir()) <= before


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.mark.parametrize(("seconds", "expect_text"), [(0.1, None), (60, "")])
async def test_very_short_audio_and_long_silence_end_done(
    system: RunningSystem, tmp_path: Path, seconds: float, expect_text: str | None
) -> None:
    source = media.to_mp3(media.silence(tmp_path / "quiet.wav", seconds), tmp_path / "quiet.mp3")
    async with system.client() as client:
        job = await until_status(client, await accepted_job_id(client, source))
    assert job["status"] == "done", job
    if expect_text is not None:
        assert job["text"] == expect_text


async def test_random_bytes_named_mp4_fail_and_leave_no_files(
    system: RunningSystem, tmp_path: Path
) -> None:
    noise = tmp_path / "clip.mp4"
    noise.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(20000)))
    paths = MediaPaths(Path(system.settings.media_dir))
    async with system.client() as client:
        job = await until_status(client, await accepted_job_id(client, noise))
    assert job["error"]["code"] == "undecodable_media"
    deadline = time.monotonic() + CLEANUP_DELAY_SECONDS + 10
    while any(path.exists() for path in paths.of_job(job["job_id"])):
        assert time.monotonic() < deadline, "the failed job's files were never deleted"
        await asyncio.sleep(0.2)


async def test_a_playlist_of_a_file_on_the_servers_disk_is_refused(
    system: RunningSystem, tmp_path: Path
) -> None:
    scene = hostile_media.make_scene(tmp_path)
    playlist = tmp_path / "playlist.m3u8"
    playlist.write_bytes(hostile_media.CORPUS["hls-absolute-path"].build(scene))
    async with system.client() as client:
        job = await until_status(client, await accepted_job_id(client, playlist))
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "unsupported_media"
    assert "playlist" in job["error"]["message"].lower()


async def test_a_file_list_naming_another_jobs_upload_is_refused(
    system: RunningSystem, clips: dict[str, Path], tmp_path: Path
) -> None:
    listing = tmp_path / "listing.txt"
    async with system.client() as client:
        # Sent at once, while the other job's upload is still in the media folder, as by an
        # attacker who knows or guesses its id.
        other = await accepted_job_id(client, clips["mp3"])
        listing.write_bytes(f"ffconcat version 1.0\n# \x01\nfile {other}\n".encode())
        job = await until_status(client, await accepted_job_id(client, listing))
        assert (await until_status(client, other))["status"] == "done"
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "unsupported_media"
