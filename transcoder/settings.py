from pydantic import Field

from shared.settings import CommonSettings


class TranscoderSettings(CommonSettings):
    transcoder_concurrency: int = Field(2, ge=1, description="Conversions run at once per process.")
    transcode_timeout_seconds: float = Field(600, gt=0)
