"""What ffprobe (through pydub) says of a media file: whether it has audio, and how long the
container says it lasts. The transcoder checks every upload with it; the gateway asks it for the
length when a backlog limit needs one."""

import json
import subprocess
from pathlib import Path
from typing import Any

from pydub.utils import get_prober_name

from shared.ffmpeg import input_options, refused_format
from shared.jobs.models import ErrorCode, JobFailure

# ffprobe reads headers, not the whole file: a file that keeps it busy longer is hostile.
PROBE_TIMEOUT_SECONDS = 30.0


def probe_audio(source: Path) -> float | None:
    """Check that `source` is in a format this service reads and has an audio track, and
    return its duration as the container declares it (None when it does not say)."""
    command = [
        get_prober_name(), "-v", "error", *input_options(),
        "-of", "json", "-show_format", "-show_streams",
    ]  # fmt: skip
    try:
        probed = subprocess.run(
            [*command, str(source)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT_SECONDS,
        )
        info = json.loads(probed.stdout or b"{}")
    except subprocess.TimeoutExpired as error:
        raise JobFailure(
            ErrorCode.UNDECODABLE_MEDIA,
            f"Reading the file's streams took longer than {PROBE_TIMEOUT_SECONDS:.0f} s; it may"
            " be damaged or built to stall decoders.",
        ) from error
    except (json.JSONDecodeError, OSError) as error:
        raise undecodable() from error
    refused = refused_format(probed.stderr)
    if refused is not None:
        raise unsupported(refused)
    streams: list[dict[str, Any]] = info.get("streams") or []
    if not streams:
        raise undecodable()
    audio = [stream for stream in streams if stream.get("codec_type") == "audio"]
    if not audio:
        raise JobFailure(
            ErrorCode.NO_AUDIO, "The file has no audio track, so there is nothing to transcribe."
        )
    declared = audio[0].get("duration") or (info.get("format") or {}).get("duration")
    try:
        return float(declared) if declared is not None else None
    except ValueError:
        return None


def unsupported(format_name: str) -> JobFailure:
    return JobFailure(
        ErrorCode.UNSUPPORTED_MEDIA,
        f"The file is in a format this service does not read ({format_name}). Playlists, file"
        " lists, image sequences and stream descriptions are refused, because they point at other"
        " files; send the audio or video file itself.",
    )


def undecodable() -> JobFailure:
    return JobFailure(
        ErrorCode.UNDECODABLE_MEDIA,
        "The file could not be decoded as audio or video; it may be damaged or in an"
        " unsupported format.",
    )
