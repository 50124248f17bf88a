"""Media to 16 kHz mono 16-bit WAV. Synchronous: run it in an executor.

pydub's ffprobe wrapper inspects the streams; the conversion itself calls ffmpeg file to file,
because pydub's decoder would hold the whole decoded track in memory at its original rate.
"""

import contextlib
import json
import subprocess
import wave
from pathlib import Path
from typing import Any

from pydub.utils import get_encoder_name, mediainfo_json

from shared.jobs import ErrorCode, JobFailure

SAMPLE_RATE = 16_000


def probe_streams(source: Path) -> list[dict[str, Any]]:
    try:
        info = mediainfo_json(str(source))
    except (json.JSONDecodeError, OSError, KeyError, IndexError) as error:
        raise _undecodable() from error
    streams: list[dict[str, Any]] = info.get("streams") or []
    if not streams:
        raise _undecodable()
    return streams


def to_wav(source: Path, target: Path, timeout_seconds: float) -> float:
    """Convert `source` into `target` and return the audio's duration in seconds."""
    streams = probe_streams(source)
    if not any(stream.get("codec_type") == "audio" for stream in streams):
        raise JobFailure(
            ErrorCode.NO_AUDIO, "The file has no audio track, so there is nothing to transcribe."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # A half-written WAV must never be mistaken for a finished one: write aside, then rename.
    partial = target.with_name(target.name + ".part")
    command = [
        get_encoder_name(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(source),
        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le",
        "-f", "wav", str(partial),
    ]  # fmt: skip
    try:
        subprocess.run(command, capture_output=True, check=True, timeout=timeout_seconds)
        duration = wav_duration(partial)
    except subprocess.TimeoutExpired as error:
        partial.unlink(missing_ok=True)
        raise JobFailure(
            ErrorCode.TIMEOUT, f"Converting the media took longer than {timeout_seconds:.0f} s."
        ) from error
    except (subprocess.CalledProcessError, wave.Error, EOFError) as error:
        partial.unlink(missing_ok=True)
        raise _undecodable() from error
    partial.replace(target)
    return duration


def wav_duration(path: Path) -> float:
    with contextlib.closing(wave.open(str(path), "rb")) as audio:
        return audio.getnframes() / audio.getframerate()


def _undecodable() -> JobFailure:
    return JobFailure(
        ErrorCode.UNDECODABLE_MEDIA,
        "The file could not be decoded as audio or video; it may be damaged or in an"
        " unsupported format.",
    )
