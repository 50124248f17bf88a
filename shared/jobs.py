"""Jobs in MongoDB: one document per job, moved forward only by conditional single-document updates.

Every transition names the statuses it may start from, so a redelivered message can never move a
job backwards or overwrite a finished one.
"""

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from shared.transcripts import Segment

JOB_ID_PATTERN = r"^[0-9a-f]{32}$"


def _as_utc(moment: datetime) -> datetime:
    # BSON dates are UTC; some servers hand them back without the zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


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


class Job(BaseModel):
    job_id: str
    status: JobStatus
    filename: str | None = None
    size_bytes: int
    content_type: str | None = None
    language: str
    engine: str
    prompt: str | None = Field(None, description="Text to steer the engine (Whisper only).")
    temperature: float | None = Field(
        None, description="Sampling temperature (Whisper only); None for Whisper's own schedule."
    )
    duration_seconds: float | None = None
    conversion_seconds: float | None = Field(None, description="Wall time ffmpeg took.")
    recognition_seconds: float | None = Field(None, description="Wall time the engine took.")
    detected_language: str | None = None
    text: str | None = None
    segments: list[Segment] | None = None
    confidence: float | None = None
    error: JobError | None = None
    callback: Callback | None = None
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


def new_job_id() -> str:
    return uuid.uuid4().hex


def now() -> datetime:
    return datetime.now(UTC)


class JobStore:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._jobs: AsyncCollection[dict[str, Any]] = client[database]["jobs"]

    async def create(
        self,
        job_id: str,
        *,
        filename: str | None,
        size_bytes: int,
        content_type: str | None,
        language: str,
        engine: str,
        prompt: str | None = None,
        temperature: float | None = None,
        callback_url: str | None = None,
    ) -> Job:
        created = now()
        job = Job(
            job_id=job_id,
            status=JobStatus.QUEUED,
            filename=filename,
            size_bytes=size_bytes,
            content_type=content_type,
            language=language,
            engine=engine,
            prompt=prompt,
            temperature=temperature,
            callback=Callback(url=callback_url) if callback_url else None,
            created_at=created,
            updated_at=created,
            stage_times={JobStatus.QUEUED: created},
        )
        document = job.model_dump(exclude={"job_id"})
        await self._jobs.insert_one({"_id": job_id, **document})
        return job

    async def get(self, job_id: str) -> Job | None:
        document = await self._jobs.find_one({"_id": job_id})
        return _to_job(document) if document else None

    async def delete(self, job_id: str) -> None:
        await self._jobs.delete_one({"_id": job_id})

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
        document = await self._jobs.find_one_and_update(
            {"_id": job_id, "status": {"$in": [str(status) for status in allowed_from]}},
            {
                "$set": {
                    "status": str(to),
                    "updated_at": moved_at,
                    f"stage_times.{to}": moved_at,
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

    async def record_callback(
        self, job_id: str, *, delivered: bool, error: str | None = None, gave_up: bool = False
    ) -> None:
        """Count one attempt to deliver the job's callback, and its outcome."""
        outcome: dict[str, Any] = {"callback.error": error, "callback.gave_up": gave_up}
        if delivered:
            outcome["callback.delivered_at"] = now()
        await self._jobs.update_one(
            {"_id": job_id}, {"$inc": {"callback.attempts": 1}, "$set": outcome}
        )

    async def unfinished_since(self, cutoff: datetime, limit: int = 500) -> list[str]:
        """Ids of jobs created before `cutoff` that are still under way."""
        unfinished = [str(status) for status in JobStatus if not status.is_final]
        cursor = self._jobs.find(
            {"status": {"$in": unfinished}, "created_at": {"$lt": cutoff}}, {"_id": 1}
        ).limit(limit)
        return [document["_id"] async for document in cursor]

    async def ensure_indexes(self) -> None:
        await self._jobs.create_index([("status", 1), ("created_at", 1)])

    async def ping(self) -> None:
        await self._jobs.database.command("ping")


def _to_job(document: dict[str, Any]) -> Job:
    return Job.model_validate({**document, "job_id": document["_id"]})


def connect_store(url: str, database: str) -> tuple[AsyncMongoClient[dict[str, Any]], JobStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000
    )
    return client, JobStore(client, database)
