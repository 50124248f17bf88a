"""What ffmpeg and ffprobe may read when they open media a client sent.

Left to guess, both follow whatever the input names: an HLS playlist or an ffconcat list makes
them read other files on the server (another job's upload among them), an SDP file opens network
sockets, an image pattern reads a series of files. Every service that runs them on a client's
media passes `input_options()` before the input, so only the demuxers of real audio and video
containers are used, and only the file or pipe it was given is opened.
"""

import re

# Containers and audio streams people record, edit and export, named as ffmpeg's demuxers are
# (`ffmpeg -demuxers`). None of them opens another file or a network address by itself. Listed
# in docs/security.md; add a format there and here together.
MEDIA_DEMUXERS = (
    # audio
    "aac", "ac3", "aiff", "amr", "amrnb", "amrwb", "ape", "au", "caf", "dsf", "dts", "eac3",
    "flac", "gsm", "loas", "mlp", "mp3", "mpc", "mpc8", "nistsphere", "ogg", "oma", "qcp", "shn",
    "tak", "truehd", "tta", "voc", "w64", "wav", "wv", "xwma",
    # video (and audio in video containers: mp4, m4a, webm, mkv, ...)
    "asf", "avi", "dv", "flv", "matroska", "mov", "mpeg", "mpegts", "mxf", "rm", "wtv",
)  # fmt: skip

# The input itself: a path (`file`) or standard input (`pipe`). Nothing a demuxer asks for on
# top of it is opened, which is a second wall behind the demuxer list.
INPUT_PROTOCOLS = ("file", "pipe")

_REFUSED_FORMAT = re.compile(rb"\[([^\s@\]]+) @ [^\]]*\] Format not on whitelist")


def input_options() -> list[str]:
    """The options that go before `-i` (ffmpeg) or the input (ffprobe)."""
    return [
        "-format_whitelist", ",".join(MEDIA_DEMUXERS),
        "-protocol_whitelist", ",".join(INPUT_PROTOCOLS),
    ]  # fmt: skip


def refused_format(stderr: bytes) -> str | None:
    """The format ffmpeg or ffprobe recognised and refused to read, from what it wrote on
    standard error; None when it refused nothing."""
    found = _REFUSED_FORMAT.search(stderr)
    return found.group(1).decode("ascii", "replace") if found else None
