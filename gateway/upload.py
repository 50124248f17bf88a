"""Streams a multipart upload straight to disk, judging it while it arrives.

Starlette's form parser reads the whole body before a route sees it; this reader stops at the first
sign of trouble (too large, plainly not media, a second file) so nothing more is kept.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect

from gateway.field_body import FieldBodyError, field_body_type, fields_of, read_bounded
from shared.sniff import SNIFF_BYTES, not_media_reason

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = "file"
MAX_FIELDS_BYTES = 64 * 1024
# Generous for any real form; what a form holds beyond them is only there to cost memory.
MAX_PARTS = 100
MAX_HEADER_BYTES = 64 * 1024
# Fields that carry short clips as data URLs (known speakers' voices), each with a budget of its
# own: a few seconds of audio are far more than all the other fields together.
CLIP_FIELDS = ("speaker_references[]", "speaker_references", "known_speaker_references[]")
MAX_CLIP_FIELD_BYTES = 4 * 1024 * 1024
MAX_CLIP_FIELDS = 10
WRITE_BYTES = 1024 * 1024
# Multipart headers and boundaries on top of the file itself.
ENVELOPE_BYTES = 64 * 1024
# What of a refused body is read before the refusal is sent (see `drain`).
DRAIN_BYTES = 8 * 1024 * 1024
DRAIN_SECONDS = 2.0


class UploadError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass
class Upload:
    path: Path
    filename: str | None
    content_type: str | None
    size_bytes: int
    fields: dict[str, list[str]]
    """The other form fields; a name sent more than once (`tags[]`, say) has every value."""
    has_file: bool = True
    """False for a form without a file (one that gives its media by URL): nothing was written."""

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    header_name: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    name: str | None = None
    is_file: bool = False
    value: bytearray = field(default_factory=bytearray)


class _FormReader:
    """Parser callbacks: they only collect bytes; the async loop writes them out."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.part = _Part()
        self.fields: dict[str, list[str]] = {}
        self.fields_size = 0
        self.parts = 0
        self.header_size = 0
        self.clip_fields = 0
        self.file_seen = False
        self.filename: str | None = None
        self.content_type: str | None = None
        self.pending = bytearray()
        self.size = 0
        self.sniffed = False

    def on_part_begin(self) -> None:
        self.part = _Part()
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise UploadError(400, f"The form has more than {MAX_PARTS} parts.")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.part.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.part.header_value += data[start:end]

    def _count_header(self, size: int) -> None:
        self.header_size += size
        if self.header_size > MAX_HEADER_BYTES:
            raise UploadError(400, f"The form's part headers exceed {MAX_HEADER_BYTES} bytes.")

    def on_header_end(self) -> None:
        name = self.part.header_name.decode("latin-1").strip().lower()
        self.part.headers[name] = bytes(self.part.header_value).strip()
        self.part.header_name.clear()
        self.part.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self.part.name = name
        if name in CLIP_FIELDS:
            self.clip_fields += 1
            if self.clip_fields > MAX_CLIP_FIELDS:
                raise UploadError(400, f"Send at most {MAX_CLIP_FIELDS} reference clips.")
        if name == FILE_FIELD and b"filename" in options:
            if self.file_seen:
                raise UploadError(400, f"Send exactly one file in the form field '{FILE_FIELD}'.")
            self.file_seen = True
            self.part.is_file = True
            self.filename = options[b"filename"].decode("utf-8", "replace") or None
            content_type = self.part.headers.get("content-type")
            self.content_type = content_type.decode("latin-1") if content_type else None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.is_file:
            self.size += end - start
            if self.size > self.max_bytes:
                raise UploadError(
                    413, f"The file is larger than the limit of {self.max_bytes} bytes."
                )
            self.pending += data[start:end]
        elif self.part.name in CLIP_FIELDS:
            self.part.value += data[start:end]
            if len(self.part.value) > MAX_CLIP_FIELD_BYTES:
                raise UploadError(
                    413,
                    f"A clip in {self.part.name} is larger than {MAX_CLIP_FIELD_BYTES} bytes;"
                    " send 2 to 10 seconds of audio.",
                )
        else:
            self.part.value += data[start:end]
            self.fields_size += end - start
            if self.fields_size > MAX_FIELDS_BYTES:
                raise UploadError(400, "The form's fields besides the file are too long.")

    def on_part_end(self) -> None:
        if not self.part.is_file and self.part.name:
            value = self.part.value.decode("utf-8", "replace").strip()
            self.fields.setdefault(self.part.name, []).append(value)
        if self.part.is_file:
            self.sniff()

    def sniff(self) -> None:
        if self.sniffed:
            return
        self.sniffed = True
        reason = not_media_reason(bytes(self.pending[:SNIFF_BYTES]))
        if reason is not None:
            raise UploadError(
                415, f"The file looks like {reason}, not audio or video; send a media file."
            )


def boundary_of(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadError(
            400,
            f"Send the media as multipart/form-data with the file in the field '{FILE_FIELD}',"
            " or give its address as JSON or a url-encoded form with the field 'url'.",
        )
    return options[b"boundary"]


# What a body of fields alone may not carry: the media, and clips of known speakers' voices.
MULTIPART_ONLY = (FILE_FIELD, *CLIP_FIELDS)


async def receive_fields(
    body: AsyncIterator[bytes], kind: str, content_length: int | None, destination: Path
) -> Upload:
    """A JSON or url-encoded body, read as the fields of a form without a file."""
    too_long = f"The body is longer than the {MAX_FIELDS_BYTES} bytes a job's fields may take."
    if content_length is not None and content_length > MAX_FIELDS_BYTES:
        raise UploadError(400, too_long)
    try:
        raw = await read_bounded(body, MAX_FIELDS_BYTES, too_long)
        fields = fields_of(kind, raw, MULTIPART_ONLY)
    except FieldBodyError as error:
        raise UploadError(error.status_code, error.message) from error
    return Upload(destination, None, None, 0, fields, has_file=False)


async def receive_upload(
    body: AsyncIterator[bytes],
    content_type: str | None,
    content_length: int | None,
    destination: Path,
    max_bytes: int,
) -> Upload:
    """Write the form's file to `destination`; on any UploadError nothing is left behind. A form
    without a file, JSON and url-encoded bodies among them, is the caller's to judge
    (`Upload.has_file`)."""
    kind = field_body_type(content_type)
    if kind is not None:
        return await receive_fields(body, kind, content_length, destination)
    boundary = boundary_of(content_type)
    # A request declared larger than the limit is refused before its body is read: known
    # speakers' clips, if any, share the limit with the file.
    if content_length is not None and content_length > max_bytes + ENVELOPE_BYTES:
        raise UploadError(413, f"The file is larger than the limit of {max_bytes} bytes.")
    reader = _FormReader(max_bytes)
    parser = MultipartParser(boundary, callbacks=_callbacks(reader))
    output: IO[bytes] | None = None
    try:
        try:
            async for chunk in body:
                parser.write(chunk)
                if not reader.sniffed and len(reader.pending) >= SNIFF_BYTES:
                    reader.sniff()
                if len(reader.pending) >= WRITE_BYTES:
                    output = await _flush(reader, output, destination)
            parser.finalize()
            if parser.state != MultipartState.END:
                raise UploadError(400, "The multipart body ends before its closing boundary.")
        except MultipartParseError as error:
            raise UploadError(400, f"The multipart body is malformed: {error}") from error
        if not reader.file_seen:
            return Upload(destination, None, None, 0, reader.fields, has_file=False)
        if reader.size == 0:
            raise UploadError(400, "The file is empty.")
        output = await _flush(reader, output, destination)
    except BaseException:
        await asyncio.to_thread(_discard, output, destination)
        raise
    assert output is not None
    await asyncio.to_thread(output.close)
    return Upload(destination, reader.filename, reader.content_type, reader.size, reader.fields)


async def drain(body: AsyncIterator[bytes], content_length: int | None) -> None:
    """Read and drop what is left of a body refused for what it holds: at most DRAIN_BYTES in all
    and for DRAIN_SECONDS, and nothing of a body declared longer than DRAIN_BYTES. A connection
    closed with unread data in it is reset, and a client may lose the refusal in the reset; a
    large body is not worth the reading, and its sender may get the reset instead."""
    if content_length is not None and content_length > DRAIN_BYTES:
        return
    drained = 0
    with contextlib.suppress(TimeoutError, ClientDisconnect):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for chunk in body:
                drained += len(chunk)
                if drained > DRAIN_BYTES:
                    return


def _callbacks(reader: _FormReader) -> "MultipartCallbacks":
    return {
        "on_part_begin": reader.on_part_begin,
        "on_header_field": reader.on_header_field,
        "on_header_value": reader.on_header_value,
        "on_header_end": reader.on_header_end,
        "on_headers_finished": reader.on_headers_finished,
        "on_part_data": reader.on_part_data,
        "on_part_end": reader.on_part_end,
    }


async def _flush(reader: _FormReader, output: IO[bytes] | None, destination: Path) -> IO[bytes]:
    if output is None:
        output = await asyncio.to_thread(_open, destination)
    data = bytes(reader.pending)
    reader.pending.clear()
    await asyncio.to_thread(output.write, data)
    return output


def _open(destination: Path) -> IO[bytes]:
    destination.parent.mkdir(parents=True, exist_ok=True)
    return destination.open("xb")


def _discard(output: IO[bytes] | None, destination: Path) -> None:
    if output is not None:
        output.close()
        destination.unlink(missing_ok=True)
