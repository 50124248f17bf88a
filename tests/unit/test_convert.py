import asyncio
import contextlib
import os
import time
import wave
from pathlib import Path

import pytest

from shared import probe
from shared.jobs.models import ErrorCode, JobFailure
from shared.probe import probe_audio
from tests import media
from transcoder.convert import BLOCK_BYTES, pcm_stream, to_wav


@pytest.mark.parametrize("kind", ["wav", "mp3", "mp4"])
def test_media_becomes_16k_mono_16bit_wav(
    clips: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    target = tmp_path / "out.wav"
    duration = to_wav(clips[kind], target, timeout_seconds=60, max_seconds=3600)
    with wave.open(str(target)) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (16000, 1, 2)
        assert audio.getnframes() / 16000 == pytest.approx(duration)
    with wave.open(str(clips["wav"])) as original:
        assert duration == pytest.approx(original.getnframes() / original.getframerate(), abs=0.1)
    assert list(tmp_path.glob("*.part")) == []


def test_video_without_audio_fails_with_no_audio(tmp_path: Path) -> None:
    source = media.video_without_audio(tmp_path / "silent.mp4")
    with pytest.raises(JobFailure) as failure:
        to_wav(source, tmp_path / "out.wav", timeout_seconds=60, max_seconds=3600)
    assert failure.value.code is ErrorCode.NO_AUDIO


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_damaged_media_fails_as_undecodable(
    clips: dict[str, Path], tmp_path: Path, damage: str
) -> None:
    source = tmp_path / "broken.mp4"
    if damage == "random":
        source.write_bytes(bytes((i * 7919) % 251 for i in range(5000)))
    else:
        source.write_bytes(clips["mp4"].read_bytes()[:3000])
    target = tmp_path / "out.wav"
    with pytest.raises(JobFailure) as failure:
        to_wav(source, target, timeout_seconds=60, max_seconds=3600)
    assert failure.value.code is ErrorCode.UNDECODABLE_MEDIA
    assert not target.exists()
    assert list(tmp_path.glob("*.part")) == []


@pytest.mark.parametrize("kind", ["wav", "mp3"])
def test_media_over_the_maximum_length_fails_as_too_long(
    clips: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    target = tmp_path / "out.wav"
    with pytest.raises(JobFailure) as failure:
        to_wav(clips[kind], target, timeout_seconds=60, max_seconds=2)
    assert failure.value.code is ErrorCode.TOO_LONG
    assert "at most 0:00:02" in failure.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["wav", "mp3", "mp4"])
async def test_the_streamed_conversion_gives_the_same_audio(
    clips: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    blocks = await streamed(clips[kind])
    await asyncio.to_thread(to_wav, clips[kind], tmp_path / "whole.wav", 60, 3600)
    with wave.open(str(tmp_path / "whole.wav")) as whole:
        assert b"".join(blocks) == whole.readframes(whole.getnframes())
    assert all(len(block) == BLOCK_BYTES for block in blocks[:-1])


async def test_damaged_media_streams_fail_as_undecodable(tmp_path: Path) -> None:
    source = tmp_path / "broken.mp3"
    source.write_bytes(b"ID3" + bytes((i * 7919) % 251 for i in range(5000)))
    with pytest.raises(JobFailure) as failure:
        await streamed(source)
    assert failure.value.code is ErrorCode.UNDECODABLE_MEDIA


@pytest.fixture(scope="module")
def slow_to_convert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Half an hour of tone: small as FLAC, and about two seconds' work for ffmpeg to convert."""
    source = tmp_path_factory.mktemp("slow") / "tone.flac"
    media.ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=1800:r=48000", "-c:a", "flac", str(source))
    return source


@pytest.mark.parametrize("end", ["timeout", "cancel"])
async def test_a_stream_that_ends_early_kills_its_ffmpeg(slow_to_convert: Path, end: str) -> None:
    """However the reading stops (a timeout, a cancellation), no ffmpeg is left behind."""
    before = ffmpeg_processes()
    running: set[int] = set()
    reading_started = asyncio.Event()

    async def read_slowly() -> None:
        async with pcm_stream(slow_to_convert, max_seconds=7200) as stream:
            while await stream.read():
                running.update(ffmpeg_processes() - before)
                reading_started.set()
                await asyncio.sleep(0.05)

    reading = asyncio.create_task(read_slowly())
    async with asyncio.timeout(10):
        await reading_started.wait()
    if end == "cancel":
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
    else:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await reading
    assert len(running) == 1
    assert not (ffmpeg_processes() & running)


async def streamed(source: Path) -> list[bytes]:
    """The blocks of a whole conversion."""
    blocks = []
    async with pcm_stream(source, max_seconds=3600) as stream:
        while block := await stream.read():
            blocks.append(block)
    return blocks


def ffmpeg_processes() -> set[int]:
    """The ffmpeg processes this test process started (the machine may run others' too)."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            # pid (comm) state ppid ...
            comm, _, rest = status.read_text().partition(") ")
            if comm.endswith("(ffmpeg") and int(rest.split()[1]) == os.getpid():
                found.add(int(status.parent.name))
    return found


async def test_a_file_that_lies_about_its_length_is_cut_off_at_the_limit(tmp_path: Path) -> None:
    source = media.lying_about_its_length(tmp_path / "lying.mp3", seconds=120)
    assert (probe_audio(source) or 0) < 20
    pcm = b""
    async with pcm_stream(source, max_seconds=20) as stream:
        while block := await stream.read():
            pcm += block
    assert 20 < len(pcm) / 2 / 16_000 <= 21.1
    with pytest.raises(JobFailure) as failure:
        await asyncio.to_thread(to_wav, source, tmp_path / "out.wav", 60, 20)
    assert failure.value.code is ErrorCode.TOO_LONG


def test_media_that_keeps_ffprobe_waiting_fails_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A named pipe nobody writes to: ffprobe opens it and waits forever.
    stalled = tmp_path / "stalled.mp3"
    os.mkfifo(stalled)
    monkeypatch.setattr(probe, "PROBE_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(JobFailure) as failure:
        probe_audio(stalled)
    assert failure.value.code is ErrorCode.UNDECODABLE_MEDIA
    assert time.monotonic() - started < 10


# (file name, encoder arguments): common formats, each read by a demuxer on the allow-list.
ACCEPTED_FORMATS = [
    ("speech.aac", ("-c:a", "aac")),
    ("speech.ac3", ("-c:a", "ac3")),
    ("speech.aiff", ()),
    ("speech.au", ()),
    ("speech.avi", ("-c:a", "libmp3lame")),
    ("speech.caf", ()),
    ("speech.flac", ()),
    ("speech.flv", ("-c:a", "aac")),
    ("speech.m4a", ("-c:a", "aac")),
    ("speech.mkv", ("-c:a", "libvorbis")),
    ("speech.mov", ("-c:a", "aac")),
    ("speech.mpg", ("-c:a", "mp2")),
    ("speech.ogg", ("-c:a", "libopus")),
    ("speech.oga", ("-c:a", "libvorbis", "-f", "ogg")),
    ("speech.ts", ("-c:a", "aac")),
    ("speech.w64", ()),
    ("speech.webm", ("-c:a", "libopus")),
    ("speech.wma", ("-c:a", "wmav2")),
    ("speech.wv", ("-c:a", "wavpack")),
]


@pytest.mark.parametrize(
    ("name", "encoding"), ACCEPTED_FORMATS, ids=[n for n, _ in ACCEPTED_FORMATS]
)
def test_common_formats_convert_whole(
    clips: dict[str, Path], tmp_path: Path, name: str, encoding: tuple[str, ...]
) -> None:
    source = tmp_path / name
    media.ffmpeg("-i", str(clips["wav"]), *encoding, str(source))
    # Uploads are stored under the job id, with no extension to tell the format.
    stored = source.rename(tmp_path / ("c" * 32))
    duration = to_wav(stored, tmp_path / "out.wav", timeout_seconds=60, max_seconds=3600)
    with wave.open(str(clips["wav"])) as original:
        assert duration == pytest.approx(original.getnframes() / original.getframerate(), abs=0.2)
