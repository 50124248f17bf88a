"""How long an upload's container says it lasts, where a limit needs it. (Whether it is media at
all is judged by `shared.sniff`.)"""

from pathlib import Path

from shared.jobs.models import JobFailure
from shared.probe import probe_audio


def declared_seconds(path: Path) -> float | None:
    """How long the media says it lasts; None when it does not say or cannot be read: the
    transcoder has the last word on such files."""
    try:
        return probe_audio(path)
    except JobFailure:
        return None
