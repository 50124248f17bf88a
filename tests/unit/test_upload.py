import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.upload import (
    DRAIN_BYTES,
    MAX_CLIP_FIELD_BYTES,
    MAX_CLIP_FIELDS,
    MAX_FIELDS_BYTES,
    Upload,
    UploadError,
    drain,
    receive_upload,
)

MAX_BYTES = 64 * 1024


def multipart(
    files: list[tuple[str, tuple[str, bytes]]], data: dict[str, str] | None = None
) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://test/", files=files, data=data)
    return request.read(), request.headers["content-type"]


async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def receive(body: bytes, content_type: str, destination: Path, chunk: int = 1000) -> Upload:
    return await receive_upload(
        chunks(body, chunk), content_type, len(body), destination, MAX_BYTES
    )


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
async def test_file_and_fields_arrive_whole_in_any_chunking(
    tmp_path: Path, clips: dict[str, Path], chunk: int
) -> None:
    content = clips["mp3"].read_bytes()[:40_000]
    body, content_type = multipart(
        [("file", ("talk.mp3", content))], data={"language": "en", "engine": "sphinx"}
    )
    upload = await receive(body, content_type, tmp_path / "job", chunk)
    assert upload.path.read_bytes() == content
    assert upload.size_bytes == len(content)
    assert upload.filename == "talk.mp3"
    assert upload.fields == {"language": ["en"], "engine": ["sphinx"]}
    assert upload.field("engine") == "sphinx"
    assert upload.field("model") is None


async def test_large_file_is_written_in_pieces(tmp_path: Path, clips: dict[str, Path]) -> None:
    content = clips["wav"].read_bytes()
    body, content_type = multipart([("file", ("a.wav", content))])
    upload = await receive_upload(
        chunks(body, 65536), content_type, None, tmp_path / "job", 10 * 1024 * 1024
    )
    assert upload.path.read_bytes() == content


@pytest.mark.parametrize(
    ("files", "status", "message"),
    [
        ([("file", ("a.wav", b""))], 400, "empty"),
        (
            [("file", ("a.mp3", b"ID3" + bytes(600))), ("file", ("b.mp3", b"ID3"))],
            400,
            "exactly one",
        ),
        ([("file", ("notes.mp4", b"just some words\n" * 100))], 415, "text"),
        ([("file", ("big.wav", b"RIFF" + bytes(MAX_BYTES)))], 413, "larger than"),
    ],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    tmp_path: Path, files: list[tuple[str, tuple[str, bytes]]], status: int, message: str
) -> None:
    body, content_type = multipart(files, data={"language": "en"})
    destination = tmp_path / "job"
    with pytest.raises(UploadError) as refused:
        await receive_upload(chunks(body, 4096), content_type, None, destination, MAX_BYTES)
    assert refused.value.status_code == status
    assert message in refused.value.message
    assert not destination.exists()


async def test_a_form_without_a_file_is_the_callers_to_judge(tmp_path: Path) -> None:
    body, content_type = multipart(
        [("other", ("a.wav", b"RIFF1234WAVE"))], data={"url": "https://example.com/a.mp3"}
    )
    destination = tmp_path / "job"
    upload = await receive(body, content_type, destination)
    assert (upload.has_file, upload.size_bytes) == (False, 0)
    assert upload.field("url") == "https://example.com/a.mp3"
    assert not destination.exists()


async def test_declared_oversize_is_refused_before_reading(tmp_path: Path) -> None:
    async def never_read() -> AsyncIterator[bytes]:
        raise AssertionError("the body was read")
        yield b""

    with pytest.raises(UploadError) as refused:
        await receive_upload(
            never_read(),
            "multipart/form-data; boundary=x",
            10 * MAX_BYTES + MAX_CLIP_FIELDS * MAX_CLIP_FIELD_BYTES,
            tmp_path / "j",
            MAX_BYTES,
        )
    assert refused.value.status_code == 413


async def test_a_body_that_is_not_multipart_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadError) as refused:
        await receive(b"RIFF....", "audio/wav", tmp_path / "job")
    assert refused.value.status_code == 400
    assert "multipart/form-data" in refused.value.message


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"url": "https://example.com/a.mp3", "hotwords": ["Ada", "Bo"], "diarize": true}',
         "application/json; charset=utf-8"),
        (b"url=https%3A%2F%2Fexample.com%2Fa.mp3&hotwords=Ada&hotwords=Bo&diarize=true",
         "application/x-www-form-urlencoded"),
    ],
)  # fmt: skip
async def test_json_and_urlencoded_bodies_are_read_as_fields_without_a_file(
    tmp_path: Path, body: bytes, content_type: str
) -> None:
    destination = tmp_path / "job"
    upload = await receive(body, content_type, destination)
    assert (upload.has_file, upload.size_bytes) == (False, 0)
    assert upload.fields == {
        "url": ["https://example.com/a.mp3"],
        "hotwords": ["Ada", "Bo"],
        "diarize": ["true"],
    }
    assert not destination.exists()


async def test_a_body_of_fields_declared_too_long_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    async def never_read() -> AsyncIterator[bytes]:
        raise AssertionError("the body was read")
        yield b""

    with pytest.raises(UploadError) as refused:
        await receive_upload(
            never_read(), "application/json", MAX_FIELDS_BYTES + 1, tmp_path / "j", MAX_BYTES
        )
    assert refused.value.status_code == 400


async def test_a_body_of_fields_that_never_ends_is_refused_once_past_the_limit(
    tmp_path: Path,
) -> None:
    chunks_read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        while True:
            chunks_read += 1
            await asyncio.sleep(0)  # as a socket would, so that the timeout below can end it
            yield b'{"url": "' + b"a" * 1024

    with pytest.raises(UploadError) as refused:
        async with asyncio.timeout(10):  # a reader with no limit would read for ever
            await receive_upload(endless(), "application/json", None, tmp_path / "j", MAX_BYTES)
    assert refused.value.status_code == 400
    assert "longer than" in refused.value.message
    assert chunks_read <= MAX_FIELDS_BYTES // 1024 + 2  # read no further than the limit


@pytest.mark.parametrize("kind", ["application/json", "application/x-www-form-urlencoded"])
async def test_a_body_of_fields_that_is_not_utf8_is_refused(tmp_path: Path, kind: str) -> None:
    async def latin1() -> AsyncIterator[bytes]:
        yield "url=https://example.com/caf\u00e9.mp3".encode("latin-1")

    with pytest.raises(UploadError) as refused:
        await receive_upload(latin1(), kind, None, tmp_path / "j", MAX_BYTES)
    assert refused.value.status_code == 400
    assert "not UTF-8" in refused.value.message


async def test_non_latin_file_names_arrive_intact(tmp_path: Path, clips: dict[str, Path]) -> None:
    body, content_type = multipart([("file", ("会議 запись.mp3", clips["mp3"].read_bytes()))])
    upload = await receive(body, content_type, tmp_path / "job")
    assert upload.filename == "会議 запись.mp3"


@pytest.mark.parametrize(
    "body",
    [
        b"--b\r\n3v--b--\r\n",
        b"--b\r\n3\xc3\x903\xf1\xaf\x80\x9c--b--\r\n",
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nRIFF',
    ],
)
async def test_a_malformed_body_is_refused(tmp_path: Path, body: bytes) -> None:
    with pytest.raises(UploadError) as refused:
        await receive(body, "multipart/form-data; boundary=b", tmp_path / "job")
    assert refused.value.status_code == 400
    assert not (tmp_path / "job").exists()


async def test_a_form_of_countless_parts_is_refused(tmp_path: Path, clips: dict[str, Path]) -> None:
    empty_fields = {f"f{number}": "" for number in range(1000)}
    body, content_type = multipart([("file", ("a.mp3", clips["mp3"].read_bytes()))], empty_fields)
    with pytest.raises(UploadError) as refused:
        await receive(body, content_type, tmp_path / "job")
    assert refused.value.status_code == 400
    assert "more than 100 parts" in refused.value.message
    assert not (tmp_path / "job").exists()


async def test_part_headers_are_bounded_in_all(tmp_path: Path) -> None:
    # Each header line within python-multipart's own limit, but many of them in many parts.
    padding = "".join(f"X-Pad-{n}: {'a' * 4000}\r\n" for n in range(6))
    parts = [
        f'--b\r\nContent-Disposition: form-data; name="f{number}"\r\n{padding}\r\nv\r\n'
        for number in range(20)
    ]
    body = ("".join(parts) + "--b--\r\n").encode()
    with pytest.raises(UploadError) as refused:
        await receive_upload(
            chunks(body, 4096), "multipart/form-data; boundary=b", None, tmp_path / "job", MAX_BYTES
        )
    assert refused.value.status_code == 400
    assert "headers exceed 65536 bytes" in refused.value.message


async def test_a_refused_body_is_read_to_its_end_only_when_it_is_small() -> None:
    """What `drain` reads of a body refused after its first chunk: all of a small one, at most
    the budget of an endless one, nothing of one declared too large to be worth reading."""
    read: list[int] = []

    async def body(chunk_count: int | None) -> AsyncIterator[bytes]:
        for number in itertools.count() if chunk_count is None else range(chunk_count):
            read.append(number)
            yield bytes(1024 * 1024)

    small = body(3)
    await anext(small)
    await drain(small, 3 * 1024 * 1024)
    assert len(read) == 3

    read.clear()
    await drain(body(None), None)
    assert len(read) == DRAIN_BYTES // (1024 * 1024) + 1

    read.clear()
    await drain(body(None), DRAIN_BYTES + 1)
    assert read == []
