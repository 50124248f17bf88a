"""Crafted media that tries to make ffmpeg read something other than itself, lie about itself, or
stall a transcoder. Each case says how the service must end it: failed with one of its codes, or
(`OWN_AUDIO` among them) done with no more audio than the file itself holds."""

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.jobs.models import ErrorCode
from tests import media

# Done, with the file's own audio only.
OWN_AUDIO = "own_audio"


@dataclass(frozen=True)
class Scene:
    """Where a hostile file is made: the folder uploads share, a recording elsewhere on the
    server's disk, another job's upload in the same folder, and clean media to damage."""

    uploads: Path
    secret: Path  # WAV, outside the uploads
    secret_ts: Path  # the same recording in MPEG-TS, which HLS segments are
    other_upload: Path  # another job's upload, named by its id as uploads are
    clean_wav: Path
    clean_mp4: Path
    clean_ogg: Path
    clean_mkv: Path


def make_scene(folder: Path) -> Scene:
    uploads = folder / "uploads"
    private = folder / "private"
    uploads.mkdir(parents=True)
    private.mkdir()
    secret = media.speak("The vault code is seven seven four one.", private / "secret.wav")
    secret_ts = private / "secret.ts"
    media.ffmpeg("-i", str(secret), "-c:a", "aac", "-f", "mpegts", str(secret_ts))
    other_upload = uploads / ("b" * 32)
    other_upload.write_bytes(secret.read_bytes())
    clean_wav = media.speak(media.SENTENCE, private / "clean.wav")
    clean_mp4 = media.to_mp4(clean_wav, private / "clean.mp4")
    clean_ogg = private / "clean.ogg"
    media.ffmpeg("-i", str(clean_wav), "-c:a", "libopus", str(clean_ogg))
    clean_mkv = private / "clean.mkv"
    media.ffmpeg("-i", str(clean_wav), "-c:a", "libopus", str(clean_mkv))
    return Scene(
        uploads, secret, secret_ts, other_upload, clean_wav, clean_mp4, clean_ogg, clean_mkv
    )


REFUSED = frozenset({ErrorCode.UNSUPPORTED_MEDIA.value})
UNREADABLE = frozenset({ErrorCode.UNDECODABLE_MEDIA.value})
DAMAGED = frozenset(
    {
        ErrorCode.UNDECODABLE_MEDIA.value,
        ErrorCode.NO_AUDIO.value,
        ErrorCode.TOO_LONG.value,
        OWN_AUDIO,
    }
)

Builder = Callable[[Scene], bytes]


@dataclass(frozen=True)
class Case:
    build: Builder
    outcomes: frozenset[str]


def _playlist(*segments: str) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:10", "#EXT-X-MEDIA-SEQUENCE:0"]
    for segment in segments:
        lines += ["#EXTINF:3.0,", segment]
    # One control byte: enough for the text check at upload to take it for binary.
    return ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n\x01").encode()


def _master_playlist(scene: Scene) -> bytes:
    inner = scene.uploads / "inner.m3u8"
    inner.write_bytes(_playlist(str(scene.secret_ts)))
    return f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=64000\n{inner}\n\x01".encode()


def _concat(*lines: str) -> bytes:
    return ("ffconcat version 1.0\n" + "".join(f"{line}\n" for line in lines)).encode()


def _sdp(port: int) -> bytes:
    return (
        "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=stream\nc=IN IP4 127.0.0.1\nt=0 0\n"
        f"m=audio {port} RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"
    ).encode()


def _wav_header(channels: int, rate: int, data_bytes: int) -> bytes:
    block = channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def _lying_wav(channels: int = 1, rate: int = 16_000, declared_seconds: float = 1) -> Builder:
    def build(scene: Scene) -> bytes:
        samples = scene.clean_wav.read_bytes()[44:][: 2 * 16_000]  # a second of real speech
        data_bytes = min(int(declared_seconds * rate * channels * 2), 0xFFFFFFFF - 36)
        return _wav_header(channels, rate, data_bytes) + samples

    return build


def _subtitles_only_mkv(scene: Scene) -> bytes:
    subtitles = scene.uploads / "made.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:02,000\nhello\n")
    target = scene.uploads / "subtitles.mkv"
    media.ffmpeg("-i", str(subtitles), "-c:s", "srt", str(target))
    return target.read_bytes()


def _data_only_ts(scene: Scene) -> bytes:
    blob = scene.uploads / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 8)
    target = scene.uploads / "data.ts"
    media.ffmpeg(
        "-f", "data", "-i", str(blob), "-map", "0", "-c", "copy", "-f", "mpegts", str(target)
    )
    return target.read_bytes()


def _png(scene: Scene) -> bytes:
    target = scene.uploads / "frame.png"
    media.ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x64:d=1", "-frames:v", "1", str(target))
    return target.read_bytes()


def _fuzzed(source: Callable[[Scene], Path], seed: int, flips: int = 40) -> Builder:
    def build(scene: Scene) -> bytes:
        data = bytearray(source(scene).read_bytes())
        chance = random.Random(seed)
        for _ in range(flips):
            data[chance.randrange(len(data))] = chance.randrange(256)
        return bytes(data)

    return build


def _truncated(source: Callable[[Scene], Path], share: float) -> Builder:
    def build(scene: Scene) -> bytes:
        data = source(scene).read_bytes()
        return data[: int(len(data) * share)]

    return build


CORPUS: dict[str, Case] = {
    # Files that point at other files or at the network.
    "hls-absolute-path": Case(lambda s: _playlist(str(s.secret_ts)), REFUSED),
    "hls-relative-path": Case(lambda s: _playlist(f"../private/{s.secret_ts.name}"), REFUSED),
    "hls-file-url": Case(lambda s: _playlist(f"file:{s.secret_ts}"), REFUSED),
    "hls-master-playlist": Case(_master_playlist, REFUSED),
    "hls-loopback-url": Case(lambda s: _playlist("http://127.0.0.1:9/secret.ts"), REFUSED),
    "ffconcat-bare-name": Case(lambda s: _concat(f"file {s.other_upload.name}"), REFUSED),
    "ffconcat-relative-path": Case(
        lambda s: _concat(f"file ../uploads/{s.other_upload.name}"), REFUSED
    ),
    "ffconcat-absolute-path": Case(lambda s: _concat(f"file '{s.secret}'"), REFUSED),
    "ffconcat-subfile-protocol": Case(
        lambda s: _concat(f"file 'subfile,,start,0,end,0,,:{s.secret}'"), REFUSED
    ),
    "ffconcat-image-pattern": Case(lambda s: _concat("file 'frame%03d.png'"), REFUSED),
    "sdp-rtp-stream": Case(lambda s: _sdp(5004), REFUSED),
    "png-image": Case(_png, REFUSED),
    "ffmetadata": Case(lambda s: b";FFMETADATA1\ntitle=hello\n\x01", REFUSED),
    # Subtitles and data, with no audio.
    "srt-subtitles": Case(lambda s: b"1\n00:00:00,000 --> 00:00:02,000\nhello\n\x01", REFUSED),
    "webvtt-subtitles": Case(lambda s: b"WEBVTT\n\n00:00.000 --> 00:02.000\nhello\n\x01", REFUSED),
    "mkv-subtitles-only": Case(_subtitles_only_mkv, frozenset({ErrorCode.NO_AUDIO.value})),
    "mpegts-data-only": Case(_data_only_ts, frozenset({ErrorCode.NO_AUDIO.value})),
    # Headers that lie.
    "wav-declares-10-hours": Case(
        _lying_wav(declared_seconds=10 * 3600),
        frozenset({ErrorCode.TOO_LONG.value, OWN_AUDIO}),
    ),
    "wav-declares-64-channels": Case(_lying_wav(channels=64), DAMAGED),
    "wav-declares-rate-zero": Case(_lying_wav(rate=0), UNREADABLE),
    "empty-file": Case(lambda s: b"", UNREADABLE),
    # Damaged containers.
    "mp4-truncated": Case(_truncated(lambda s: s.clean_mp4, 0.5), UNREADABLE),
    "ogg-truncated": Case(_truncated(lambda s: s.clean_ogg, 0.5), DAMAGED),
    "mp4-fuzzed": Case(_fuzzed(lambda s: s.clean_mp4, seed=1), DAMAGED),
    "mkv-fuzzed": Case(_fuzzed(lambda s: s.clean_mkv, seed=2), DAMAGED),
    "ogg-fuzzed": Case(_fuzzed(lambda s: s.clean_ogg, seed=3), DAMAGED),
    "wav-fuzzed": Case(_fuzzed(lambda s: s.clean_wav, seed=4), DAMAGED),
}
