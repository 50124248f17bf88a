"""What a job is: its document's fields, statuses and error codes, and the records kept beside
it (pieces' transcripts, known speakers' clips)."""

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from shared.jobs.options import JobOptions
from shared.provenance import Provenance
from shared.transcripts import Segment, SpeakerTalk, Transcript

JOB_ID_PATTERN = r"^[0-9a-f]{32}$"


def as_utc(moment: datetime) -> datetime:
    # BSON dates are UTC; some servers hand them back without the zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class JobStatus(StrEnum):
    QUEUED = "queued"
    TRANSCODING = "transcoding"
    RECOGNIZING = "recognizing"
    DONE = "done"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED)


class ErrorCode(StrEnum):
    NO_AUDIO = "no_audio"
    UNDECODABLE_MEDIA = "undecodable_media"
    UNSUPPORTED_MEDIA = "unsupported_media"
    TIMEOUT = "timeout"
    RECOGNITION_FAILED = "recognition_failed"
    RETRIES_EXHAUSTED = "retries_exhausted"
    PROCESSING_ERROR = "processing_error"
    EXPIRED = "expired"
    TOO_LONG = "too_long"
    CANCELLED = "cancelled"
    FETCH_REFUSED = "fetch_refused"
    FETCH_FAILED = "fetch_failed"
    TOO_LARGE = "too_large"


class JobError(BaseModel):
    code: str
    message: str


class Callback(BaseModel):
    """Where the finished job is POSTed, and how that went."""

    url: str
    attempts: int = 0
    delivered_at: UtcDatetime | None = None
    error: str | None = Field(None, description="Why the last attempt failed.")
    gave_up: bool = Field(False, description="True once no further attempt will be made.")


class Progress(BaseModel):
    """How far recognition has come, in pieces of audio and in seconds of it."""

    pieces_done: int = 0
    pieces_total: int | None = Field(
        None,
        description="None while the recording is still being converted: its pieces are"
        " recognized as they are cut, and counted once the last one is.",
    )
    audio_seconds_done: float = 0.0
    audio_seconds_total: float | None = Field(
        None, description="None while the recording is still being converted."
    )
    eta_seconds: float | None = Field(
        None, description="Estimated seconds until done, from the pace so far; None until known."
    )

    @property
    def complete(self) -> bool:
        """Every piece is recognized (never before the total is known)."""
        return self.pieces_total is not None and self.pieces_done >= self.pieces_total


class StoredVoice(BaseModel):
    """A stretch of one piece's speech and its speaker embedding, timed from the recording's
    start: what the join clusters, whichever recognizer heard the piece."""

    start: float
    end: float
    embedding: bytes = Field(
        description="Little-endian float32s: a third of the size of a BSON list of doubles, and"
        " read at every piece of a long recording for its provisional labels."
    )


class JobHeader(BaseModel):
    """Which job it is, whose, and of what media: the first fields of a job."""

    job_id: str
    status: JobStatus
    owner: str | None = Field(
        None, description="The name of the API key that created the job (None without keys)."
    )
    held: bool = Field(
        False,
        description="Waiting in the database behind its key's earlier jobs (fair share between"
        " keys); it enters the queues when one of them finishes.",
    )
    filename: str | None = None
    source_url: str | None = Field(
        None, description="Where the media is fetched from, when it was given by URL."
    )
    size_bytes: int = Field(description="The media's size; 0 until media given by URL arrives.")
    content_type: str | None = None


# Fields come in the order of the bases from the last: the header, then the options.
class JobBase(JobOptions, JobHeader):
    """What a job is and how it stands: the fields its owner sees (gateway.schemas.JobPublic),
    and the stored document's core, its options among them under their own names."""

    duration_seconds: float | None = None
    conversion_seconds: float | None = Field(None, description="Wall time ffmpeg took.")
    recognition_seconds: float | None = Field(None, description="Wall time the engine took.")
    detected_language: str | None = None
    text: str | None = None
    segments: list[Segment] | None = None
    speakers: list[SpeakerTalk] | None = Field(
        None, description="Who speaks, and how long, when the job labels speakers."
    )
    confidence: float | None = None
    provenance: Provenance | None = Field(
        None, description="What produced the transcript: engine, model, versions, settings."
    )
    # Trust in the transcript (recognizer/quality.py).
    language_probability: float | None = Field(
        None, description="How sure language detection was of `detected_language` (0 to 1)."
    )
    recovered_seconds: float | None = Field(
        None,
        description="Seconds of speech the first decoding left without words and a second"
        " decoding, of that stretch alone, recovered (their segments are flagged `recovered`).",
    )
    error: JobError | None = None
    callback: Callback | None = None
    progress: Progress | None = Field(None, description="Set once the audio is cut into pieces.")
    deadline_at: UtcDatetime | None = Field(
        None,
        description="When the job fails as `expired` if it has not finished; grows with the audio.",
    )
    live: bool = Field(
        False, description="A live session's job (`/v1/realtime`): its pieces are utterances."
    )
    created_at: UtcDatetime
    updated_at: UtcDatetime
    stage_times: dict[JobStatus, UtcDatetime] = Field(
        default_factory=dict, description="When the job entered each status it has been in."
    )


class Job(JobBase):
    """The job's document as stored, with the bookkeeping the services keep on it; never an API
    response as it is (gateway.schemas.JobPublic is)."""

    released_at: UtcDatetime | None = Field(
        None,
        description="When the job entered the queues, if not on upload: its release from a"
        " fair-share hold, or a replay. Its deadline counts from then.",
    )
    audio_ready_at: UtcDatetime | None = Field(
        None, description="When the last piece of audio was handed to the recognizers."
    )
    announced_at: UtcDatetime | None = Field(
        None, description="When the broker confirmed the event announcing the job's end."
    )
    live_ended_at: UtcDatetime | None = Field(
        None, description="When a live session ended; its job is done once every utterance is."
    )

    @property
    def options(self) -> JobOptions:
        """What the job asks of recognition, as one value."""
        return JobOptions.model_validate(self.model_dump(include=set(JobOptions.model_fields)))


# What a run of a job leaves in its document, as a job that never ran has it; a failed job that
# is replayed (JobStore.reopen) starts from this. `recognized_pieces` and `piece_slots` are the
# job store's bookkeeping of pieces (shared/jobs/pieces.py), in the document but not the model.
RUN_RESULTS: dict[str, Any] = {
    "error": None,
    "finished_at": None,
    "progress": None,
    "recognized_pieces": {},
    "piece_slots": None,
    "detected_language": None,
    "language_probability": None,
    "conversion_seconds": None,
    "recognition_seconds": None,
    "recovered_seconds": None,
    "audio_ready_at": None,
    "announced_at": None,
}


class JobFailure(Exception):
    """A permanent failure of one job: retrying cannot help, the job ends `failed` with this code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def new_job_id() -> str:
    return uuid.uuid4().hex


def now() -> datetime:
    return datetime.now(UTC)


class PieceResult(BaseModel):
    """One piece's transcript, stored on its own until the last piece joins them all."""

    job_id: str
    index: int
    offset_seconds: float
    seconds: float
    transcript: Transcript = Field(description="Timed from the start of the whole recording.")
    engine_seconds: float = Field(description="Wall time the engine took for this piece.")
    worker: str = Field(description="The recognizer that did it: host and process id.")
    voices: list[StoredVoice] | None = Field(
        None, description="The piece's speaker voices, when its job labels speakers."
    )


class SpeakerReference(BaseModel):
    """A known speaker's clip (16 kHz mono 16-bit PCM), and its embedding once a recognizer
    has computed it."""

    name: str
    pcm: bytes
    embedding: list[float] | None = None


def owes_callback(job: Job) -> bool:
    """Whether the job has finished and its callback is yet to be delivered or given up."""
    callback = job.callback
    return (
        job.status.is_final
        and callback is not None
        and callback.delivered_at is None
        and not callback.gave_up
    )
