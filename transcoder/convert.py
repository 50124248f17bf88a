"""Media to 16 kHz mono 16-bit audio.

ffprobe inspects the streams first (`shared.probe`); the conversion itself calls ffmpeg, not
pydub, whose decoder would hold the whole decoded track in memory at its original rate. The
transcoder reads ffmpeg's output as it comes (`pcm_stream`), so the pieces of a long recording
go out while the rest is still being converted.
"""

import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator
from pathlib import Path

from pydub.utils import get_encoder_name

from shared.ffmpeg import input_options
from shared.jobs.models import ErrorCode, JobFailure
from shared.probe import probe_audio, undecodable
from shared.wav import wav_writer

SAMPLE_RATE = 16_000
# What a read of ffmpeg's output waits for: ten seconds of audio (the last read may be less).
BLOCK_BYTES = 10 * SAMPLE_RATE * 2


def to_wav(source: Path, target: Path, timeout_seconds: float, max_seconds: float) -> float:
    """Convert `source` into the WAV file `target` through the stream the transcoder reads, with
    its limits; the audio's duration in seconds. Blocking, with a loop of its own: for tools and
    tests, never inside a running loop."""
    return asyncio.run(_write_wav(source, target, timeout_seconds, max_seconds))


async def _write_wav(
    source: Path, target: Path, timeout_seconds: float, max_seconds: float
) -> float:
    try:
        with wav_writer(target, SAMPLE_RATE) as output:
            async with asyncio.timeout(timeout_seconds), pcm_stream(source, max_seconds) as stream:
                while block := await stream.read():
                    output.writeframes(block)
                    if output.getnframes() > max_seconds * SAMPLE_RATE:
                        raise too_long(output.getnframes() / SAMPLE_RATE, max_seconds)
            return output.getnframes() / SAMPLE_RATE
    except TimeoutError as error:
        raise timed_out(timeout_seconds) from error


class PcmStream:
    """ffmpeg's output as it comes: 16 kHz mono 16-bit PCM."""

    def __init__(self, ffmpeg: asyncio.subprocess.Process) -> None:
        self._ffmpeg = ffmpeg

    async def read(self) -> bytes:
        """The next block of audio; empty once ffmpeg has finished (and converted all)."""
        assert self._ffmpeg.stdout is not None
        try:
            return await self._ffmpeg.stdout.readexactly(BLOCK_BYTES)
        except asyncio.IncompleteReadError as end:
            if end.partial:
                return end.partial
        if await self._ffmpeg.wait() != 0:
            raise undecodable()
        return b""


@contextlib.asynccontextmanager
async def pcm_stream(source: Path, max_seconds: float) -> AsyncIterator[PcmStream]:
    """Convert `source` with ffmpeg, for the body of the `async with` to read as it goes. ffmpeg
    is killed when the body ends before it has (a failure, a timeout, a cancellation), so no
    ffmpeg outlives the attempt that started it."""
    declared = await asyncio.to_thread(probe_audio, source)
    if declared is not None and declared > max_seconds:
        raise too_long(declared, max_seconds)
    ffmpeg = await asyncio.create_subprocess_exec(
        *_command(source, "-", max_seconds, "s16le"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        limit=BLOCK_BYTES,
    )
    try:
        yield PcmStream(ffmpeg)
    finally:
        if ffmpeg.returncode is None:
            ffmpeg.kill()
            await asyncio.shield(_ended(ffmpeg))


async def _ended(ffmpeg: asyncio.subprocess.Process) -> None:
    """Wait for a killed ffmpeg. Its output is read to the end first: asyncio's wait returns
    only once the pipe has closed, which a reader that stopped reading never sees."""
    assert ffmpeg.stdout is not None
    while await ffmpeg.stdout.read(BLOCK_BYTES):
        pass
    await ffmpeg.wait()


def _command(source: Path, target: str, max_seconds: float, form: str = "wav") -> list[str]:
    # A file can declare a short length and hold hours: ffmpeg stops a second past the limit,
    # so that it is found too long without gigabytes written first. Its output goes out a
    # second at a time: written to a pipe one packet at a time, it took twice as long.
    return [
        get_encoder_name(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        *input_options(), "-i", str(source),
        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le",
        "-af", f"asetnsamples=n={SAMPLE_RATE}:p=0", "-flush_packets", "0",
        "-t", f"{max_seconds + 1:g}", "-f", form, target,
    ]  # fmt: skip


def timed_out(timeout_seconds: float) -> JobFailure:
    return JobFailure(
        ErrorCode.TIMEOUT, f"Converting the media took longer than {timeout_seconds:.0f} s."
    )


def too_long(seconds: float, max_seconds: float) -> JobFailure:
    return JobFailure(
        ErrorCode.TOO_LONG,
        f"The recording lasts {_clock(seconds)}; this service takes at most {_clock(max_seconds)}."
        " Split it, or ask the operators to raise STT_MAX_AUDIO_SECONDS.",
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def wav_duration(path: Path) -> float:
    with contextlib.closing(wave.open(str(path), "rb")) as audio:
        return audio.getnframes() / audio.getframerate()
