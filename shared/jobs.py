"""Jobs in MongoDB: one document per job, moved forward only by conditional single-document updates.

Every transition names the statuses it may start from, so a redelivered message can never move a
job backwards or overwrite a finished one.
"""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, TypeAdapter
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from shared.engines import TRANSCRIBE
from shared.provenance import Provenance
from shared.settings import CommonSettings
from shared.transcripts import Segment, SpeakerTalk, Transcript

JOB_ID_PATTERN = r"^[0-9a-f]{32}$"


def _as_utc(moment: datetime) -> datetime:
    # BSON dates are UTC; some servers hand them back without the zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
# A date as read back raw: the MongoDB stand-in may hand one back as its ISO string.
_RAW_DATE: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)


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


MAX_SPEAKERS = 20


class SpeakerLabels(BaseModel):
    """What a job asks of speaker labelling: how many speakers to find (None leaves it to the
    clustering), and the names of known speakers whose clips are kept beside the job."""

    speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS, description="Exactly this many.")
    min_speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS)
    max_speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS)
    names: list[str] = Field(
        default_factory=list, description="Known speakers, one reference clip each."
    )


class StoredVoice(BaseModel):
    """A stretch of one piece's speech and its speaker embedding, timed from the recording's
    start: what the join clusters, whichever recognizer heard the piece."""

    start: float
    end: float
    embedding: bytes = Field(
        description="Little-endian float32s: a third of the size of a BSON list of doubles, and"
        " read at every piece of a long recording for its provisional labels."
    )


class Job(BaseModel):
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
    language: str
    engine: str
    prompt: str | None = Field(None, description="Text to steer the engine (Whisper only).")
    temperature: float | None = Field(
        None, description="Sampling temperature (Whisper only); None for Whisper's own schedule."
    )
    # What the job asks of the engine besides its language.
    task: str = Field(
        TRANSCRIBE, description="`transcribe`, or `translate` into English (multilingual Whisper)."
    )
    hotwords: list[str] = Field(
        default_factory=list,
        description="Names and terms the engine should expect (Whisper: hotwords; online"
        " engines: a prompt).",
    )
    speaker_labels: SpeakerLabels | None = Field(
        None, description="Set when the job labels who speaks (`diarize`); None when it does not."
    )
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
    live: bool = Field(
        False, description="A live session's job (`/v1/realtime`): its pieces are utterances."
    )
    live_ended_at: UtcDatetime | None = Field(
        None, description="When a live session ended; its job is done once every utterance is."
    )
    queue_position: int | None = Field(
        None,
        description="While the job waits for a slot: how many jobs of its engine wait before it"
        " (not stored; given by GET /v1/jobs/{job_id}).",
    )
    estimated_start_seconds: float | None = Field(
        None,
        description="While the job waits: an estimate of when a slot starts on it, from the"
        " work queued before it, the recent recognition time per piece and the live slots.",
    )
    created_at: UtcDatetime
    updated_at: UtcDatetime
    stage_times: dict[JobStatus, UtcDatetime] = Field(
        default_factory=dict, description="When the job entered each status it has been in."
    )


class JobFailure(Exception):
    """A permanent failure of one job: retrying cannot help, the job ends `failed` with this code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def deadline_for(job: Job, settings: CommonSettings, audio_seconds: float = 0.0) -> datetime:
    """When `job` fails as `expired`: the one rule, wherever a deadline is set. It counts from
    when the job entered the queues (its upload, or its release from a hold), never from a
    moment it spent waiting its turn, and grows with the audio once its length is known."""
    allowance = settings.job_deadline_seconds + (
        audio_seconds * settings.deadline_seconds_per_audio_second
    )
    return (job.released_at or job.created_at) + timedelta(seconds=allowance)


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


_UNFINISHED = [str(status) for status in JobStatus if not status.is_final]
IDEMPOTENCY_WINDOW = timedelta(hours=24)
# Known speakers' clips outlive any job that can still use them; the job's deletion removes them.
REFERENCES_KEPT = timedelta(days=7)


@dataclass(frozen=True)
class Listing:
    """Which jobs a page of the job list shows; `after` is the `list_key` of the last job of the
    page before."""

    owner: str | None = None
    status: JobStatus | None = None
    engine: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    after: str | None = None


def list_key(job: Job) -> str:
    """The job's creation time and id as one string that sorts as they do, newest last. The job
    list pages on it rather than on the date itself: the MongoDB stand-in compares dates only
    to the second (and takes strings that look like ISO dates for dates), so it is digits."""
    return f"{_time_key(job.created_at)}/{job.job_id}"


def _time_key(moment: datetime) -> str:
    return _as_utc(moment).astimezone(UTC).strftime("%Y%m%d%H%M%S%f")


LIST_KEY = re.compile(r"\d{20}/[0-9a-f]{32}")
# Sorts after the "/" and hex id that follow a time in a list key.
_AFTER_EVERY_ID = "/~"


class JobStore:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._jobs: AsyncCollection[dict[str, Any]] = client[database]["jobs"]
        self._pieces: AsyncCollection[dict[str, Any]] = client[database]["pieces"]
        self._requests: AsyncCollection[dict[str, Any]] = client[database]["idempotency_keys"]
        # Jobs deleted while their callback was still owed, kept until it is delivered or given up.
        self._owed: AsyncCollection[dict[str, Any]] = client[database]["callbacks_owed"]
        self._references: AsyncCollection[dict[str, Any]] = client[database]["speaker_references"]

    async def create(
        self,
        job_id: str,
        *,
        filename: str | None,
        size_bytes: int,
        content_type: str | None,
        language: str,
        engine: str,
        settings: CommonSettings,
        prompt: str | None = None,
        temperature: float | None = None,
        task: str = TRANSCRIBE,
        hotwords: tuple[str, ...] = (),
        callback_url: str | None = None,
        owner: str | None = None,
        duration_seconds: float | None = None,
        held: bool = False,
        source_url: str | None = None,
        speaker_labels: SpeakerLabels | None = None,
        speaker_references: Sequence[SpeakerReference] = (),
    ) -> Job:
        # To the millisecond, as BSON keeps it, so the job read back has the same list key.
        moment = now()
        created = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        job = Job(
            job_id=job_id,
            status=JobStatus.QUEUED,
            owner=owner,
            held=held,
            duration_seconds=duration_seconds,
            filename=filename,
            source_url=source_url,
            size_bytes=size_bytes,
            content_type=content_type,
            language=language,
            engine=engine,
            prompt=prompt,
            temperature=temperature,
            task=task,
            hotwords=list(hotwords),
            speaker_labels=speaker_labels,
            callback=Callback(url=callback_url) if callback_url else None,
            created_at=created,
            updated_at=created,
            stage_times={JobStatus.QUEUED: created},
        )
        job.deadline_at = deadline_for(job, settings)
        document = job.model_dump(exclude={"job_id", "queue_position", "estimated_start_seconds"})
        if speaker_references:
            # Beside the job, not in it: the job document is read often, the clips once a piece.
            await self._references.insert_one(
                {
                    "_id": job_id,
                    "created_at": created,
                    "references": [reference.model_dump() for reference in speaker_references],
                }
            )
        await self._jobs.insert_one({"_id": job_id, "list_key": list_key(job), **document})
        return job

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        return self._jobs.database

    async def get(self, job_id: str) -> Job | None:
        document = await self._jobs.find_one({"_id": job_id})
        return _to_job(document) if document else None

    async def delete(self, job_id: str) -> None:
        """Delete the job and its pieces; a finished job whose callback is still owed is kept
        aside for the callback (see owed_callback)."""
        document = await self._jobs.find_one({"_id": job_id})
        if document is not None and owes_callback(_to_job(document)):
            await self._owed.replace_one({"_id": job_id}, document, upsert=True)
        await self._jobs.delete_one({"_id": job_id})
        await self.delete_pieces(job_id)
        await self._references.delete_one({"_id": job_id})

    async def speaker_references(self, job_id: str) -> list[SpeakerReference]:
        """The job's known speakers' clips, in the order their names were given."""
        document = await self._references.find_one({"_id": job_id})
        references = document.get("references", []) if document else []
        return [SpeakerReference.model_validate(reference) for reference in references]

    async def note_reference_embeddings(
        self, job_id: str, references: Sequence[SpeakerReference]
    ) -> None:
        """Keep the references' embeddings, so later pieces need not compute them again."""
        await self._references.update_one(
            {"_id": job_id},
            {"$set": {"references": [reference.model_dump() for reference in references]}},
        )

    async def owed_callback(self, job_id: str) -> Job | None:
        """A job deleted before its callback was delivered or given up."""
        document = await self._owed.find_one({"_id": job_id})
        return _to_job(document) if document else None

    async def delete_pieces(self, job_id: str) -> None:
        """Forget the pieces' transcripts; once the job is done, its own transcript has them."""
        await self._pieces.delete_many({"job_id": job_id})

    async def advance(
        self,
        job_id: str,
        to: JobStatus,
        *,
        allowed_from: tuple[JobStatus, ...],
        **fields: Any,
    ) -> Job | None:
        """Move the job to `to` if it is in one of `allowed_from`; None when it was not."""
        moved_at = now()
        # The date its retention counts from (a TTL index), only ever on a finished job.
        finished = {"finished_at": moved_at} if to.is_final else {}
        document = await self._jobs.find_one_and_update(
            {"_id": job_id, "status": {"$in": [str(status) for status in allowed_from]}},
            {
                "$set": {
                    "status": str(to),
                    "updated_at": moved_at,
                    f"stage_times.{to}": moved_at,
                    **finished,
                    **fields,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return _to_job(document) if document else None

    async def fail(self, job_id: str, code: ErrorCode, message: str) -> Job | None:
        """Fail a job that is not finished yet; None when it already was."""
        unfinished = tuple(status for status in JobStatus if not status.is_final)
        error = JobError(code=code, message=message).model_dump()
        return await self.advance(job_id, JobStatus.FAILED, allowed_from=unfinished, error=error)

    async def reopen(
        self, job_id: str, codes: tuple[ErrorCode, ...], settings: CommonSettings
    ) -> Job | None:
        """Put a job that failed with one of `codes` back to `queued`, as if just uploaded;
        None when it is not such a job."""
        job = await self.get(job_id)
        if job is None:
            return None
        reopened = now()
        deadline_at = deadline_for(job.model_copy(update={"released_at": reopened}), settings)
        document = await self._jobs.find_one_and_update(
            {
                "_id": job_id,
                "status": str(JobStatus.FAILED),
                "error.code": {"$in": [str(code) for code in codes]},
            },
            {
                "$set": {
                    "status": str(JobStatus.QUEUED),
                    "error": None,
                    "finished_at": None,
                    "progress": None,
                    "recognized_pieces": {},
                    "piece_slots": None,
                    "detected_language": None,
                    "audio_ready_at": None,
                    "announced_at": None,
                    "released_at": reopened,
                    "deadline_at": deadline_at,
                    "updated_at": reopened,
                    "stage_times": {str(JobStatus.QUEUED): reopened},
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            return None
        await self.delete_pieces(job_id)
        job = _to_job(document)
        if job.callback is not None:
            # A replayed job ends anew, and its receiver hears of that end too.
            callback = Callback(url=job.callback.url)
            await self._jobs.update_one(
                {"_id": job_id}, {"$set": {"callback": callback.model_dump()}}
            )
            job = job.model_copy(update={"callback": callback})
        return job

    async def note_announced(self, job_id: str) -> None:
        """Record that the event announcing the job's end was confirmed by the broker."""
        await self._jobs.update_one({"_id": job_id}, {"$set": {"announced_at": now()}})

    async def claim_piece_slots(self, job_id: str, slots: int) -> int:
        """Fix how many slots the last pieces of the job's recording are cut for, unless an
        earlier run of the transcoder did (a run again must cut the same pieces); the number
        that holds. Kept in the document, not on the job."""
        await self._jobs.update_one(
            {"_id": job_id, "piece_slots": None}, {"$set": {"piece_slots": slots}}
        )
        document = await self._jobs.find_one({"_id": job_id}, {"piece_slots": 1})
        held = (document or {}).get("piece_slots")
        return slots if held is None else int(held)

    async def start_pieces(self, job_id: str) -> None:
        """Give the job a progress before its first piece is handed out, while the total is
        not known yet; once: a transcoder that runs again leaves the progress as it is."""
        await self._jobs.update_one(
            {"_id": job_id, "status": {"$in": _UNFINISHED}, "progress": None},
            {"$set": {"progress": Progress().model_dump()}},
        )

    async def plan_pieces(
        self,
        job_id: str,
        *,
        pieces: int,
        audio_seconds: float,
        deadline_at: datetime,
        conversion_seconds: float | None = None,
    ) -> None:
        """Record how many pieces the audio was cut into and how long it is, and move the
        deadline to what its length needs; before the last piece is handed out, so that the
        piece which completes the set sees the total. Once: a transcoder that runs again
        (redelivered, or racing another) cuts the same pieces and must not touch totals the
        recognizers already count against."""
        progress = Progress(pieces_total=pieces, audio_seconds_total=audio_seconds)
        await self._jobs.update_one(
            {
                "_id": job_id,
                "status": {"$in": _UNFINISHED},
                # Also matches a job without progress (MongoDB takes a missing path for null).
                "progress.pieces_total": None,
            },
            {
                "$set": {
                    "progress": progress.model_dump(),
                    "deadline_at": deadline_at,
                    "duration_seconds": audio_seconds,
                    "conversion_seconds": conversion_seconds,
                }
            },
        )

    async def audio_ready(self, job_id: str) -> None:
        await self._jobs.update_one({"_id": job_id}, {"$set": {"audio_ready_at": now()}})

    async def start_recognizing(self, job_id: str, **fields: Any) -> tuple[Job | None, bool]:
        """The job, moved to `recognizing` if it was not yet, and whether this call moved it;
        None (and False) when it has finished or is gone."""
        job = await self.advance(
            job_id, JobStatus.RECOGNIZING, allowed_from=(JobStatus.TRANSCODING,), **fields
        )
        if job is not None:
            return job, True
        job = await self.get(job_id)
        if job is None or job.status is not JobStatus.RECOGNIZING:
            return None, False
        return job, False

    async def claim_language(
        self, job_id: str, language: str, probability: float | None = None
    ) -> str:
        """Set the job's language unless a piece already did; the language that holds."""
        await self._jobs.update_one(
            {"_id": job_id, "detected_language": None},
            {"$set": {"detected_language": language, "language_probability": probability}},
        )
        document = await self._jobs.find_one({"_id": job_id}, {"detected_language": 1})
        held = document.get("detected_language") if document else None
        return held or language

    async def save_piece(self, piece: PieceResult) -> None:
        await self._pieces.update_one(
            {"_id": f"{piece.job_id}:{piece.index:05d}"},
            # Dated for the retention (a TTL index): a piece whose cleanup was lost goes too.
            {"$set": {**piece.model_dump(), "saved_at": now()}},
            upsert=True,
        )

    async def is_recognized(self, job_id: str, index: int) -> bool:
        found = await self._jobs.find_one(
            {"_id": job_id, f"recognized_pieces.{index}": {"$exists": True}}, {"_id": 1}
        )
        return found is not None

    async def count_piece(self, job_id: str, index: int, seconds: float) -> Job | None:
        """Count a saved piece into the job's progress, once however often it is delivered;
        the job after, or None if this piece was counted before."""
        document = await self._jobs.find_one_and_update(
            {"_id": job_id, f"recognized_pieces.{index}": {"$exists": False}},
            {"$set": {f"recognized_pieces.{index}": seconds, "updated_at": now()}},
            return_document=ReturnDocument.AFTER,
        )
        return _to_job(document) if document else None

    async def add_live_piece(self, job_id: str, seconds: float) -> None:
        """Count one more utterance into a live session's job, before it is handed out."""
        await self._jobs.update_one(
            {"_id": job_id},
            {"$inc": {"progress.pieces_total": 1, "progress.audio_seconds_total": seconds}},
        )

    async def end_live(self, job_id: str, duration_seconds: float) -> Job | None:
        """Record that a live session ended; the job after, or None if it had ended before."""
        document = await self._jobs.find_one_and_update(
            {"_id": job_id, "live": True, "live_ended_at": None},
            {"$set": {"live_ended_at": now(), "duration_seconds": duration_seconds}},
            return_document=ReturnDocument.AFTER,
        )
        return _to_job(document) if document else None

    async def piece(self, job_id: str, index: int) -> PieceResult | None:
        document = await self._pieces.find_one({"_id": f"{job_id}:{index:05d}"}, {"_id": 0})
        return PieceResult.model_validate(document) if document else None

    async def set_eta(self, job_id: str, eta_seconds: float | None) -> None:
        await self._jobs.update_one(
            {"_id": job_id, "status": {"$in": _UNFINISHED}},
            {"$set": {"progress.eta_seconds": eta_seconds}},
        )

    async def pieces(self, job_id: str) -> list[PieceResult]:
        """The pieces recognized so far, in the order they are heard."""
        cursor = self._pieces.find({"job_id": job_id}, {"_id": 0}).sort("index", 1)
        return [PieceResult.model_validate(document) async for document in cursor]

    async def record_callback(
        self, job_id: str, *, delivered: bool, error: str | None = None, gave_up: bool = False
    ) -> None:
        """Count one attempt to deliver the job's callback, and its outcome."""
        outcome: dict[str, Any] = {"callback.error": error, "callback.gave_up": gave_up}
        if delivered:
            outcome["callback.delivered_at"] = now()
        update = {"$inc": {"callback.attempts": 1}, "$set": outcome}
        await self._jobs.update_one({"_id": job_id}, update)
        if delivered or gave_up:
            await self._owed.delete_one({"_id": job_id})
        else:
            await self._owed.update_one({"_id": job_id}, update)

    async def overdue(self, moment: datetime) -> list[str]:
        """Ids of jobs under way (not held) whose deadline has passed at `moment`."""
        cursor = self._jobs.find({"status": {"$in": _UNFINISHED}}, {"deadline_at": 1, "held": 1})
        return [
            document["_id"]
            async for document in cursor
            if not document.get("held") and _before(document.get("deadline_at"), moment)
        ]

    async def count_dispatched(self, owner: str) -> int:
        """`owner`'s unfinished jobs that are in the queues (not held)."""
        return await self._jobs.count_documents({**_unfinished_of(owner), "held": False})

    async def next_held(self, owner: str) -> Job | None:
        """`owner`'s oldest held job."""
        document = await self._jobs.find_one(
            {**_unfinished_of(owner), "held": True}, {"segments": 0}, sort=[("list_key", 1)]
        )
        return _to_job(document) if document else None

    async def release(self, job: Job, settings: CommonSettings) -> bool:
        """Let a held job go on (its deadline counts from now); False if it was not held."""
        released_at = now()
        deadline_at = deadline_for(job.model_copy(update={"released_at": released_at}), settings)
        released = await self._jobs.update_one(
            {"_id": job.job_id, "held": True},
            {
                "$set": {
                    "held": False,
                    "released_at": released_at,
                    "deadline_at": deadline_at,
                    "updated_at": released_at,
                }
            },
        )
        return released.modified_count == 1

    async def hold_again(self, job_id: str) -> None:
        await self._jobs.update_one({"_id": job_id}, {"$set": {"held": True}})

    async def owners_holding(self) -> set[str]:
        """The keys that have held jobs."""
        cursor = self._jobs.find({**_unfinished_of(None), "held": True}, {"owner": 1})
        return {str(document["owner"]) async for document in cursor if document.get("owner")}

    async def waiting_since(self, engine: str) -> list[datetime]:
        """When the jobs of `engine` that wait to be recognized were uploaded, oldest first."""
        cursor = self._jobs.find(
            {
                "engine": engine,
                "status": {"$in": [str(JobStatus.QUEUED), str(JobStatus.TRANSCODING)]},
            },
            {"created_at": 1},
        )
        return sorted(
            [_RAW_DATE.validate_python(document["created_at"]) async for document in cursor]
        )

    async def recognition_seconds_per_piece(self, engine: str, sample: int) -> float | None:
        """The mean recognition time of one piece (most jobs are one) over the last `sample`
        jobs the engine finished; None before there are any."""
        cursor = (
            self._jobs.find(
                {"engine": engine, "status": str(JobStatus.DONE)},
                {"recognition_seconds": 1, "progress": 1},
            )
            .sort("created_at", -1)
            .limit(sample)
        )
        paces = [
            document["recognition_seconds"]
            / ((document.get("progress") or {}).get("pieces_total") or 1)
            async for document in cursor
            if document.get("recognition_seconds")
        ]
        return sum(paces) / len(paces) if paces else None

    async def unannounced(self, before: datetime) -> list[Job]:
        """Jobs that ended before `before` without their end being announced (the event was not
        confirmed, or the worker died in between)."""
        finished = [str(status) for status in JobStatus if status.is_final]
        cursor = self._jobs.find(
            {"status": {"$in": finished}, "announced_at": None}, {"segments": 0}
        )
        return [
            _to_job(document)
            async for document in cursor
            if _before(document.get("updated_at"), before)
        ]

    async def ensure_indexes(self, retention_days: float) -> None:
        """Indexes for the queries that run often, and the ageing of what is written per job;
        every service asks for them as it starts (creating an index that exists does nothing).
        Finished jobs and stray pieces go `retention_days` after they ended (0: never)."""
        await self._jobs.create_index([("status", 1)])
        # The job list: newest first, of one owner or of all, with the id breaking ties.
        await self._jobs.create_index([("owner", 1), ("list_key", -1)])
        await self._jobs.create_index([("list_key", -1)])
        # Fair share (a key's jobs under way, held or not, oldest first) and the queue
        # estimates (an engine's waiting jobs, its latest finished ones).
        await self._jobs.create_index([("owner", 1), ("status", 1), ("held", 1), ("list_key", 1)])
        await self._jobs.create_index([("engine", 1), ("status", 1), ("created_at", -1)])
        await self._pieces.create_index([("job_id", 1), ("index", 1)])
        window = IDEMPOTENCY_WINDOW.total_seconds()
        await expire_after(self._requests, "created_at", window)
        retention = retention_days * 24 * 3600 or None
        await expire_after(self._jobs, "finished_at", retention)
        await expire_after(self._pieces, "saved_at", retention)
        await expire_after(self._owed, "finished_at", retention)
        await expire_after(self._references, "created_at", REFERENCES_KEPT.total_seconds())

    async def claim_request(self, key: str, job_id: str) -> str | None:
        """Tie an idempotency `key` to `job_id`; if an earlier request within the window has it,
        leave it and return that request's job id instead."""
        document = {"_id": key, "job_id": job_id, "created_at": now()}
        try:
            await self._requests.insert_one(document)
            return None
        except DuplicateKeyError:
            earlier = await self._requests.find_one({"_id": key})
        if earlier is None or _before(earlier.get("created_at"), now() - IDEMPOTENCY_WINDOW):
            # Expired (a TTL index removes it in time; this does not wait for it): start over.
            await self._requests.update_one({"_id": key}, {"$set": document}, upsert=True)
            return None
        return str(earlier["job_id"])

    async def page(self, listing: Listing, limit: int) -> list[Job]:
        """Up to `limit` jobs that match `listing`, newest first, without their transcripts."""
        query: dict[str, Any] = {}
        for name, value in (
            ("owner", listing.owner),
            ("status", listing.status),
            ("engine", listing.engine),
        ):
            if value is not None:
                query[name] = str(value)
        bounds: dict[str, str] = {}
        if listing.created_after is not None:
            bounds["$gt"] = _time_key(listing.created_after) + _AFTER_EVERY_ID
        upper = [_time_key(listing.created_before)] if listing.created_before else []
        upper += [listing.after] if listing.after is not None else []
        if upper:
            bounds["$lt"] = min(upper)
        if bounds:
            query["list_key"] = bounds
        cursor = (
            self._jobs.find(query, {"segments": 0, "text": 0}).sort([("list_key", -1)]).limit(limit)
        )
        return [_to_job(document) async for document in cursor]

    async def count_unfinished(self, owner: str) -> int:
        return await self._jobs.count_documents(_unfinished_of(owner))

    async def release_request(self, key: str, job_id: str) -> None:
        """Untie `key` from a request that did not become a job, so a retry may try again."""
        await self._requests.delete_one({"_id": key, "job_id": job_id})

    async def queued_audio_seconds(self, owner: str | None = None) -> float:
        """Seconds of audio accepted and not yet recognized (of `owner`'s jobs, if named); jobs
        whose length is not known yet count as nothing."""
        cursor = self._jobs.find(
            _unfinished_of(owner), {"duration_seconds": 1, "recognized_pieces": 1}
        )
        total = 0.0
        async for document in cursor:
            done = sum((document.get("recognized_pieces") or {}).values())
            total += max((document.get("duration_seconds") or 0.0) - done, 0.0)
        return total

    async def ping(self) -> None:
        await self._jobs.database.command("ping")


async def expire_after(
    collection: AsyncCollection[dict[str, Any]], field: str, seconds: float | None
) -> None:
    """Documents of `collection` go `seconds` after the date in their `field` (a TTL index;
    documents without that date stay); None keeps them forever. A changed period changes the
    index in place."""
    keys = [(field, 1)]
    existing = [
        index async for index in await collection.list_indexes() if dict(index["key"]) == {field: 1}
    ]
    if seconds is None:
        for index in existing:
            if "expireAfterSeconds" in index:
                await collection.drop_index(index["name"])
        return
    try:
        await collection.create_index(keys, expireAfterSeconds=int(seconds))
    except OperationFailure as error:
        if error.code not in (_INDEX_OPTIONS_CONFLICT, _INDEX_KEY_SPECS_CONFLICT):
            raise
        index = {"keyPattern": {field: 1}, "expireAfterSeconds": int(seconds)}
        await collection.database.command("collMod", collection.name, index=index)


_INDEX_OPTIONS_CONFLICT = 85
_INDEX_KEY_SPECS_CONFLICT = 86


def owes_callback(job: Job) -> bool:
    """Whether the job has finished and its callback is yet to be delivered or given up."""
    callback = job.callback
    return (
        job.status.is_final
        and callback is not None
        and callback.delivered_at is None
        and not callback.gave_up
    )


def _before(moment: Any, limit: datetime) -> bool:
    """Whether a stored date is before `limit`. Compared here, not in the query: the MongoDB
    stand-in keeps dates written by `$set` as strings, which a range query does not compare."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return isinstance(moment, datetime) and _as_utc(moment) < limit


def _to_job(document: dict[str, Any]) -> Job:
    job = Job.model_validate({**document, "job_id": document["_id"]})
    if job.progress is not None:
        # Counted from the pieces recognized, never from a counter beside them: whatever runs
        # twice, the job is complete exactly when every piece of the plan is in the set.
        recognized = document.get("recognized_pieces") or {}
        job.progress.pieces_done = len(recognized)
        job.progress.audio_seconds_done = float(sum(recognized.values()))
    return job


def connect_store(url: str, database: str) -> tuple[AsyncMongoClient[dict[str, Any]], JobStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000
    )
    return client, JobStore(client, database)


def _unfinished_of(owner: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {"status": {"$in": _UNFINISHED}}
    if owner is not None:
        query["owner"] = owner
    return query
