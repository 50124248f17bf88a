from pydantic import Field

from shared.settings import CommonSettings


class JanitorSettings(CommonSettings):
    janitor_concurrency: int = Field(8, ge=1)
