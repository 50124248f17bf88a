"""Judging media by its leading bytes: is it plainly something other than audio or video?

Only content that is certainly not media is refused; anything else goes to the transcoder, where
ffmpeg has the last word: it reads only the formats `shared.ffmpeg` allows (a playlist with one
binary byte passes this check, and fails there `unsupported_media`) and fails the job with
`undecodable_media` if it cannot read the file. The gateway judges uploads with it, the
transcoder media it fetches from a URL.
"""

SNIFF_BYTES = 512

_NOT_MEDIA_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF-", "a PDF document"),
    (b"{\\rtf", "an RTF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Office document"),
    (b"PK\x03\x04", "a ZIP archive or Office document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "a Windows executable"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


def not_media_reason(head: bytes) -> str | None:
    """What `head` (the first bytes of a file) plainly is, when that is not audio or video."""
    for signature, kind in _NOT_MEDIA_SIGNATURES:
        if head.startswith(signature):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if _is_text(head):
        return "text"
    return None


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut off by the end of the sample is still text.
        if error.start < len(head) - 3:
            return False
        text = head[: error.start].decode("utf-8")
    return all(char.isprintable() or char in "\t\r\n\f" for char in text)
