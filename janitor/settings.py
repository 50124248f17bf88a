"""The janitor's settings (STT_* variables), on top of those every service shares."""

from pydantic import Field

from shared.settings import CommonSettings


class JanitorSettings(CommonSettings):
    janitor_concurrency: int = Field(
        8, ge=1, description="Finished jobs whose files the janitor deletes at once."
    )
    sweep_interval_seconds: float = Field(
        60,
        gt=0,
        description="How often jobs past their deadline, or past their retention, are looked for.",
    )
