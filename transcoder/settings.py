"""The transcoder's settings (STT_* variables), on top of those every service shares."""

from typing import Annotated

from pydantic import Field

from shared.settings import CommaSeparated, CommonSettings


class TranscoderSettings(CommonSettings):
    transcoder_concurrency: int = Field(2, ge=1, description="Conversions run at once per process.")
    transcode_timeout_seconds: float = Field(
        600,
        gt=0,
        description="A conversion (with cutting and handing out its pieces) running longer is"
        " stopped, its ffmpeg killed, and its job fails `timeout`.",
    )
    transcoder_niceness: int = Field(
        10, ge=0, le=19, description="Scheduling niceness of the transcoder and its ffmpeg runs."
    )
    piece_seconds: float = Field(
        60,
        ge=5,
        description="Longer recordings are cut at pauses into pieces of at most this many seconds,"
        " recognized in parallel.",
    )
    fetch_timeout_seconds: float = Field(
        300,
        gt=0,
        description="Media given by URL must arrive whole within this many seconds (redirects"
        " included), or the job fails `fetch_failed`.",
    )
    fetch_min_bytes_per_second: int = Field(
        32 * 1024,
        ge=1,
        description="Media given by URL must arrive at least this fast, judged over each"
        " STT_FETCH_RATE_WINDOW_SECONDS, or the job fails `fetch_failed`: a server that trickles"
        " its answer cannot hold a transcoder for the whole of STT_FETCH_TIMEOUT_SECONDS.",
    )
    fetch_rate_window_seconds: float = Field(
        10,
        gt=0,
        description="The stretch over which the fetch rate is judged; also the longest a media"
        " server may take to answer, or stay silent while it sends.",
    )
    fetch_max_redirects: int = Field(
        3, ge=0, description="Redirects a media URL may take; each new address is checked again."
    )
    fetch_allowed_hosts: Annotated[tuple[str, ...], *CommaSeparated] = Field(
        (),
        description="Comma-separated host names (or addresses, as written in the URL) that media"
        " may be fetched from even though they are not public, for media inside your network.",
    )
