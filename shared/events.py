"""The events services exchange. Fields are only ever added; a breaking change gets a new name.

Consumers ignore fields they do not know, so a newer producer never breaks an older consumer.
"""

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.jobs.models import JOB_ID_PATTERN, JobError, Progress
from shared.jobs.options import JobOptions
from shared.transcripts import Segment


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    routing_key: ClassVar[str]
    schema_version: int = 1
    job_id: str = Field(pattern=JOB_ID_PATTERN)

    @property
    def topic(self) -> str:
        """The routing key this event is published with."""
        return self.routing_key


class MediaUploaded(Event):
    routing_key: ClassVar[str] = "media.uploaded"


class AudioReady(Event):
    """One piece of a job's audio, ready to recognize; most jobs have one piece.

    A whole recording is routed as `audio.ready.<engine>`, a piece of a longer one as
    `audio.piece.<engine>`: each engine has its own queues, and the pieces of long recordings
    have a queue of their own, so a short job never waits behind them."""

    routing_key: ClassVar[str] = "audio.ready"
    piece_routing_key: ClassVar[str] = "audio.piece"
    engine: str
    duration_seconds: float = Field(
        description="The whole recording's length; of a piece handed out while the recording is"
        " still being converted, the length converted so far."
    )
    conversion_seconds: float | None = None
    piece_index: int = Field(0, ge=0)
    piece_count: int | None = Field(
        1,
        ge=1,
        description="How many pieces the recording is cut into; None for a piece handed out"
        " while it is still being converted, before that is known (the job's progress has the"
        " total once it is).",
    )
    offset_seconds: float = Field(0.0, ge=0, description="Where the piece starts in the recording.")
    piece_seconds: float | None = Field(None, description="The piece's length; None for a whole.")

    @staticmethod
    def topic_for(engine: str, pieces: bool = False) -> str:
        prefix = AudioReady.piece_routing_key if pieces else AudioReady.routing_key
        return f"{prefix}.{engine}"

    @property
    def is_piece(self) -> bool:
        """One piece of a recording cut in several, rather than a whole one."""
        return self.piece_count != 1

    @property
    def topic(self) -> str:
        return self.topic_for(self.engine, pieces=self.is_piece)

    @property
    def length_seconds(self) -> float:
        return self.duration_seconds if self.piece_seconds is None else self.piece_seconds


class RecognitionStarted(Event):
    """A slot has started on the job's first piece."""

    routing_key: ClassVar[str] = "recognition.started"


class PieceRecognized(Event):
    """One piece of a job of several is recognized; the segments are timed from the recording's
    start."""

    routing_key: ClassVar[str] = "piece.recognized"
    piece_index: int
    progress: Progress
    segments: list[Segment]


class TranscriptDone(Event):
    routing_key: ClassVar[str] = "transcript.done"


class JobFailed(Event):
    routing_key: ClassVar[str] = "job.failed"
    code: str
    message: str


class UtteranceReady(Event):
    """One utterance of a live session, cut by the gateway at a pause and stored as a piece of
    the session's job; routed as `live.utterance.<engine>`, a queue recognizers take first."""

    routing_key: ClassVar[str] = "live.utterance"
    engine: str
    piece_index: int = Field(ge=0)
    offset_seconds: float = Field(ge=0, description="Where it starts in the session's audio.")
    piece_seconds: float = Field(ge=0)

    @staticmethod
    def topic_for(engine: str) -> str:
        return f"{UtteranceReady.routing_key}.{engine}"

    @property
    def topic(self) -> str:
        return self.topic_for(self.engine)


class UtteranceRecognized(Event):
    """The text of one utterance of a live session, for the gateway that holds the session;
    stored with the job's pieces before it is published."""

    routing_key: ClassVar[str] = "live.recognized"
    piece_index: int
    text: str
    segments: list[Segment] = Field(default_factory=list)
    error: JobError | None = Field(None, description="Set when this utterance could not be.")


FINISHED = (TranscriptDone.routing_key, JobFailed.routing_key)


class InterimReady(Event):
    """The audio of a live session's utterance so far, to recognize for interim text. It
    carries its audio (16 kHz PCM16, base64) and is never stored: a pass not taken within
    INTERIM_EXPIRY_SECONDS of `sent_at` is dropped, by the queue or by the recognizer."""

    routing_key: ClassVar[str] = "live.interim"
    options: JobOptions = Field(description="What the session asks of recognition.")
    # What gateways and recognizers older than `options` send and read instead of it.
    engine: str = ""
    language: str = ""
    prompt: str | None = None
    utterance_index: int = Field(ge=0)
    pass_number: int = Field(ge=0)
    sent_at: float = Field(description="When the gateway sent it (Unix time, seconds).")
    audio: str = Field(repr=False)

    @model_validator(mode="before")
    @classmethod
    def _either_shape(cls, given: Any) -> Any:
        """The event made from its options fills in the older fields, and one from an older
        gateway, without options, gets them from those fields."""
        if not isinstance(given, dict):
            return given
        if given.get("options") is None:
            older = {"engine": given.get("engine"), "language": given.get("language", "")}
            return {**given, "options": {**older, "prompt": given.get("prompt")}}
        options = JobOptions.model_validate(given["options"])
        older = {"engine": options.engine, "language": options.language, "prompt": options.prompt}
        return {**older, **given}

    @staticmethod
    def topic_for(engine: str) -> str:
        return f"{InterimReady.routing_key}.{engine}"

    @property
    def topic(self) -> str:
        return self.topic_for(self.options.engine)


class InterimRecognized(Event):
    """The text of one interim pass, for the gateway that holds the session."""

    routing_key: ClassVar[str] = "live.interim-recognized"
    utterance_index: int
    pass_number: int
    text: str


# Interim passes are worth nothing late: the queue drops one not taken this soon, and so does a
# recognizer that takes one older (a copy redelivered after its first taker died).
INTERIM_EXPIRY_SECONDS = 1.0
