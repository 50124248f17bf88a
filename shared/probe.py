"""What ffprobe (through pydub) says of a media file: whether it has audio, and how long the
container says it lasts. The transcoder checks every upload with it; the gateway asks it for the
length when a backlog limit needs one."""

import json
from pathlib import Path
from typing import Any

from pydub.utils import mediainfo_json

from shared.jobs import ErrorCode, JobFailure


def probe_audio(source: Path) -> float | None:
    """Check that `source` has an audio track and return its duration as the container
    declares it (None when it does not say)."""
    try:
        info = mediainfo_json(str(source))
    except (json.JSONDecodeError, OSError, KeyError, IndexError) as error:
        raise undecodable() from error
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


def undecodable() -> JobFailure:
    return JobFailure(
        ErrorCode.UNDECODABLE_MEDIA,
        "The file could not be decoded as audio or video; it may be damaged or in an"
        " unsupported format.",
    )
