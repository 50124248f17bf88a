"""The events services exchange. Fields are only ever added; a breaking change gets a new name.

Consumers ignore fields they do not know, so a newer producer never breaks an older consumer.
"""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    routing_key: ClassVar[str]
    schema_version: int = 1
    job_id: str

    @property
    def topic(self) -> str:
        """The routing key this event is published with."""
        return self.routing_key


class MediaUploaded(Event):
    routing_key: ClassVar[str] = "media.uploaded"


class AudioReady(Event):
    """Routed by engine (`audio.ready.<engine>`), so each engine has a queue of its own."""

    routing_key: ClassVar[str] = "audio.ready"
    engine: str
    duration_seconds: float
    conversion_seconds: float | None = None

    @staticmethod
    def topic_for(engine: str) -> str:
        return f"{AudioReady.routing_key}.{engine}"

    @property
    def topic(self) -> str:
        return self.topic_for(self.engine)


class TranscriptDone(Event):
    routing_key: ClassVar[str] = "transcript.done"


class JobFailed(Event):
    routing_key: ClassVar[str] = "job.failed"
    code: str
    message: str
