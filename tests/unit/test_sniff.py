from pathlib import Path

import pytest

from shared.sniff import SNIFF_BYTES, not_media_reason


@pytest.mark.parametrize("kind", ["wav", "mp3", "mp4"])
def test_real_media_is_let_through(clips: dict[str, Path], kind: str) -> None:
    head = clips[kind].read_bytes()[:SNIFF_BYTES]
    assert not_media_reason(head) is None


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "a PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
        (b"PK\x03\x04\x14\x00", "a ZIP archive or Office document"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "a WebP image"),
        (b"hello, this is a plain text file\n", "text"),
        ("Grüße, 你好, привет".encode(), "text"),
    ],
)
def test_plainly_not_media_is_named(head: bytes, reason: str) -> None:
    assert not_media_reason(head) == reason


def test_text_cut_inside_a_character_is_still_text() -> None:
    head = ("a" * 10 + "你").encode()[:-1]
    assert not_media_reason(head) == "text"


def test_binary_that_is_no_known_format_is_left_to_ffmpeg() -> None:
    assert not_media_reason(bytes(range(256))) is None
