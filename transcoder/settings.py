from pydantic import Field

from shared.settings import CommonSettings


class TranscoderSettings(CommonSettings):
    transcoder_concurrency: int = Field(2, ge=1, description="Conversions run at once per process.")
    transcode_timeout_seconds: float = Field(600, gt=0)
    transcoder_niceness: int = Field(
        10, ge=0, le=19, description="Scheduling niceness of the transcoder and its ffmpeg runs."
    )
    piece_seconds: float = Field(
        60,
        ge=5,
        description="Longer recordings are cut at pauses into pieces of at most this many seconds,"
        " recognized in parallel.",
    )
