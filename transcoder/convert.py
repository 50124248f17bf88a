"""Media to 16 kHz mono 16-bit WAV.

ffprobe inspects the streams first (`shared.probe`); the conversion itself calls ffmpeg file to
file, because pydub's decoder would hold the whole decoded track in memory at its original rate.
"""

import asyncio
import contextlib
import subprocess
import uuid
import wave
from pathlib import Path

from pydub.utils import get_encoder_name

from shared.jobs.models import ErrorCode, JobFailure
from shared.probe import probe_audio, undecodable

SAMPLE_RATE = 16_000


def to_wav(source: Path, target: Path, timeout_seconds: float, max_seconds: float) -> float:
    """Convert `source` into `target` and return the audio's duration in seconds (blocking:
    for tools and tests; the transcoder uses `convert`)."""
    partial = _prepare(source, target, max_seconds)
    try:
        subprocess.run(
            _command(source, partial, max_seconds),
            capture_output=True,
            check=True,
            timeout=timeout_seconds,
        )
    except subprocess.TimeoutExpired as error:
        partial.unlink(missing_ok=True)
        raise _timed_out(timeout_seconds) from error
    except subprocess.CalledProcessError as error:
        partial.unlink(missing_ok=True)
        raise undecodable() from error
    return _finish(partial, target, max_seconds)


async def convert(source: Path, target: Path, timeout_seconds: float, max_seconds: float) -> float:
    """`to_wav` without blocking the event loop. ffmpeg is killed, and its partial file
    deleted, when the conversion times out or is cancelled (a shutdown, or a redelivery's
    twin), so no ffmpeg outlives the attempt that started it."""
    partial = await asyncio.to_thread(_prepare, source, target, max_seconds)
    ffmpeg = await asyncio.create_subprocess_exec(
        *_command(source, partial, max_seconds),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            status = await ffmpeg.wait()
    except TimeoutError as error:
        raise _timed_out(timeout_seconds) from error
    finally:
        if ffmpeg.returncode is None:
            ffmpeg.kill()
            await asyncio.shield(ffmpeg.wait())
            partial.unlink(missing_ok=True)
    if status != 0:
        partial.unlink(missing_ok=True)
        raise undecodable()
    return await asyncio.to_thread(_finish, partial, target, max_seconds)


def _prepare(source: Path, target: Path, max_seconds: float) -> Path:
    """Check the media, and name the file this attempt writes before it is renamed to `target`."""
    declared = probe_audio(source)
    if declared is not None and declared > max_seconds:
        raise too_long(declared, max_seconds)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A half-written WAV must never be mistaken for a finished one: write aside, then rename.
    # Each attempt has its own, so a retry never writes into the file of one still running.
    return target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.part")


def _command(source: Path, partial: Path, max_seconds: float) -> list[str]:
    # A file can declare a short length and hold hours: ffmpeg stops a second past the limit,
    # so that _finish sees it is too long without gigabytes written first.
    return [
        get_encoder_name(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(source),
        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le",
        "-t", f"{max_seconds + 1:g}", "-f", "wav", str(partial),
    ]  # fmt: skip


def _finish(partial: Path, target: Path, max_seconds: float) -> float:
    try:
        duration = wav_duration(partial)
    except (wave.Error, EOFError) as error:
        partial.unlink(missing_ok=True)
        raise undecodable() from error
    if duration > max_seconds:
        partial.unlink(missing_ok=True)
        raise too_long(duration, max_seconds)
    partial.replace(target)
    return duration


def _timed_out(timeout_seconds: float) -> JobFailure:
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
