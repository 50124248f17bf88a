"""Bodies that carry fields and no file: JSON (`{"url": "https://…", "language": "en"}`, as
hosted speech APIs take a media URL) and ordinary url-encoded forms.

Each is read into the same `name -> values` fields a multipart form gives, so a job asked for
this way goes through exactly the checks and limits of a multipart one. The media itself, and
speaker reference clips, stay multipart-only.
"""

import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

from python_multipart.multipart import parse_options_header

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
FIELD_BODY_TYPES = (JSON_TYPE, FORM_TYPE)


class FieldBodyError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def field_body_type(content_type: str | None) -> str | None:
    """JSON_TYPE or FORM_TYPE when the body is one of them (any charset), else None."""
    kind = parse_options_header(content_type or "")[0].decode("latin-1").lower()
    if kind == JSON_TYPE or (kind.startswith("application/") and kind.endswith("+json")):
        return JSON_TYPE
    return FORM_TYPE if kind == FORM_TYPE else None


async def read_bounded(body: AsyncIterator[bytes], max_bytes: int, too_long: str) -> bytes:
    """The whole body, refused with 400 `too_long` as soon as it passes `max_bytes`."""
    received = bytearray()
    async for chunk in body:
        received += chunk
        if len(received) > max_bytes:
            raise FieldBodyError(400, too_long)
    return bytes(received)


def fields_of(kind: str, raw: bytes, multipart_only: tuple[str, ...]) -> dict[str, list[str]]:
    """The body's fields as a multipart form would give them. A field named in `multipart_only`
    is refused with 422."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FieldBodyError(400, f"The body is not UTF-8: {error}.") from error
    pairs = _json_pairs(text) if kind == JSON_TYPE else parse_qsl(text, keep_blank_values=True)
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in multipart_only:
            raise FieldBodyError(
                422,
                f"'{name}' can only be sent in a multipart/form-data upload, in a part of its"
                " own; send the job that way.",
            )
        fields.setdefault(name, []).append(value.strip())
    return fields


def _json_pairs(text: str) -> list[tuple[str, str]]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise FieldBodyError(400, f"The JSON body is malformed: {error}.") from error
    except RecursionError as error:  # thousands of nested brackets
        raise FieldBodyError(400, "The JSON body is nested too deeply.") from error
    if not isinstance(document, dict):
        raise FieldBodyError(
            400, 'The JSON body must be an object, such as {"url": "https://…/talk.mp3"}.'
        )
    pairs: list[tuple[str, str]] = []
    for name, value in document.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((name, _as_field(name, item)) for item in values if item is not None)
    return pairs


def _as_field(name: str, value: object) -> str:
    """A JSON value as the text a form field would carry: true/false, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise FieldBodyError(
        422, f"'{name}' must be a string, a number, true or false, or a list of them."
    )
