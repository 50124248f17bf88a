"""Jobs in MongoDB: one document per job, moved forward only by conditional single-document updates.

Every transition names the statuses it may start from, so a redelivered message can never move a
job backwards or overwrite a finished one.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from shared.jobs.deadline import deadline_for
from shared.jobs.documents import UNFINISHED, stored_before, to_job, unfinished_of
from shared.jobs.idempotency import IDEMPOTENCY_WINDOW, IdempotencyRecords
from shared.jobs.listing import JobPages, list_key
from shared.jobs.live_sessions import LiveSessionRecords
from shared.jobs.models import (
    RUN_RESULTS,
    Callback,
    ErrorCode,
    Job,
    JobError,
    JobStatus,
    SpeakerReference,
    now,
    owes_callback,
)
from shared.jobs.options import JobOptions
from shared.jobs.pace import PaceStatistics
from shared.jobs.pieces import PieceRecords
from shared.jobs.references import REFERENCES_KEPT, SpeakerReferenceRecords
from shared.settings import CommonSettings


class JobStore(
    JobPages,
    IdempotencyRecords,
    PaceStatistics,
    PieceRecords,
    LiveSessionRecords,
    SpeakerReferenceRecords,
):
    """The job documents and what is kept beside them; the job list, idempotency keys, the
    figures behind queue estimates, the pieces of long recordings, the live sessions under way
    and known speakers' clips are parts of it written in their own modules."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._jobs: AsyncCollection[dict[str, Any]] = client[database]["jobs"]
        self._pieces: AsyncCollection[dict[str, Any]] = client[database]["pieces"]
        self._requests: AsyncCollection[dict[str, Any]] = client[database]["idempotency_keys"]
        # Jobs deleted while their callback was still owed, kept until it is delivered or given up.
        self._owed: AsyncCollection[dict[str, Any]] = client[database]["callbacks_owed"]
        self._references: AsyncCollection[dict[str, Any]] = client[database]["speaker_references"]
        self._last_created = datetime.fromtimestamp(0, UTC)

    async def create(
        self,
        job_id: str,
        options: JobOptions,
        *,
        filename: str | None,
        size_bytes: int,
        content_type: str | None,
        settings: CommonSettings,
        callback_url: str | None = None,
        owner: str | None = None,
        duration_seconds: float | None = None,
        held: bool = False,
        source_url: str | None = None,
        speaker_references: Sequence[SpeakerReference] = (),
    ) -> Job:
        # To the millisecond, as BSON keeps it, so the job read back has the same list key. A job
        # made by this process in the same millisecond as its one before goes a millisecond
        # later, or the two would be listed and released in the order of their random ids; a
        # clock set back further than a second is followed rather than run ahead of.
        moment = now()
        created = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if self._last_created - timedelta(seconds=1) < created <= self._last_created:
            created = self._last_created + timedelta(milliseconds=1)
        self._last_created = created
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
            **options.model_dump(),
            callback=Callback(url=callback_url) if callback_url else None,
            created_at=created,
            updated_at=created,
            stage_times={JobStatus.QUEUED: created},
        )
        job.deadline_at = deadline_for(job, settings)
        document = job.model_dump(exclude={"job_id"})
        if speaker_references:
            await self.keep_speaker_references(job_id, created, speaker_references)
        await self._jobs.insert_one({"_id": job_id, "list_key": list_key(job), **document})
        return job

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        return self._jobs.database

    async def get(self, job_id: str) -> Job | None:
        document = await self._jobs.find_one({"_id": job_id})
        return to_job(document) if document else None

    async def delete(self, job_id: str) -> None:
        """Delete the job and its pieces; a finished job whose callback is still owed is kept
        aside for the callback (see owed_callback)."""
        document = await self._jobs.find_one({"_id": job_id})
        if document is not None and owes_callback(to_job(document)):
            await self._owed.replace_one({"_id": job_id}, document, upsert=True)
        await self._jobs.delete_one({"_id": job_id})
        await self.delete_pieces(job_id)
        await self._references.delete_one({"_id": job_id})
        # A retry with the deleted job's idempotency key makes a new job, not a 409.
        await self._requests.delete_many({"job_id": job_id})

    async def owed_callback(self, job_id: str) -> Job | None:
        """A job deleted before its callback was delivered or given up."""
        document = await self._owed.find_one({"_id": job_id})
        return to_job(document) if document else None

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
        # The date its retention counts from (delete_retired), only ever on a finished job.
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
        return to_job(document) if document else None

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
        deadline_at = deadline_for(job, settings, released_at=reopened)
        document = await self._jobs.find_one_and_update(
            {
                "_id": job_id,
                "status": str(JobStatus.FAILED),
                "error.code": {"$in": [str(code) for code in codes]},
            },
            {
                "$set": {
                    **RUN_RESULTS,
                    "status": str(JobStatus.QUEUED),
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
        job = to_job(document)
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

    async def has_ended(self, job_id: str) -> bool:
        """Whether the job has finished (cancelled, say) or is gone; reads its status alone."""
        found = await self._jobs.find_one(
            {"_id": job_id, "status": {"$in": UNFINISHED}}, {"_id": 1}
        )
        return found is None

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
            {
                "$set": {
                    "live_ended_at": now(),
                    "duration_seconds": duration_seconds,
                    "interim_out_until": None,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return to_job(document) if document else None

    async def set_eta(self, job_id: str, eta_seconds: float | None) -> None:
        await self._jobs.update_one(
            {"_id": job_id, "status": {"$in": UNFINISHED}},
            {"$set": {"progress.eta_seconds": eta_seconds}},
        )

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
        cursor = self._jobs.find({"status": {"$in": UNFINISHED}}, {"deadline_at": 1, "held": 1})
        return [
            document["_id"]
            async for document in cursor
            if not document.get("held") and stored_before(document.get("deadline_at"), moment)
        ]

    async def count_dispatched(self, owner: str) -> int:
        """`owner`'s unfinished jobs that are in the queues (not held); a live session counts
        as its utterances that are (they take slots before any file does)."""
        files = await self._jobs.count_documents(
            {**unfinished_of(owner), "held": False, "live": {"$ne": True}}
        )
        return files + await self.live_utterances_in_flight(owner)

    async def next_held(self, owner: str) -> Job | None:
        """`owner`'s oldest held job."""
        document = await self._jobs.find_one(
            {**unfinished_of(owner), "held": True}, {"segments": 0}, sort=[("list_key", 1)]
        )
        return to_job(document) if document else None

    async def release(self, job: Job, settings: CommonSettings) -> bool:
        """Let a held job go on (its deadline counts from now); False if it was not held."""
        released_at = now()
        deadline_at = deadline_for(job, settings, released_at=released_at)
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
        cursor = self._jobs.find({**unfinished_of(None), "held": True}, {"owner": 1})
        return {str(document["owner"]) async for document in cursor if document.get("owner")}

    async def unannounced(self, before: datetime) -> list[Job]:
        """Jobs that ended before `before` without their end being announced (the event was not
        confirmed, or the worker died in between)."""
        finished = [str(status) for status in JobStatus if status.is_final]
        cursor = self._jobs.find(
            {"status": {"$in": finished}, "announced_at": None}, {"segments": 0}
        )
        return [
            to_job(document)
            async for document in cursor
            if stored_before(document.get("updated_at"), before)
        ]

    async def delete_retired(self, retention_days: float, moment: datetime) -> int:
        """Delete the jobs that finished more than `retention_days` before `moment` (0: none);
        the janitor's sweep calls it, as MongoDB's TTL monitor would every minute. Jobs have no
        TTL index: on the embedded MongoDB stand-in one makes every read of the collection, each
        status poll among them, purge the whole collection first, at a cost that grows with the
        jobs kept."""
        if not retention_days:
            return 0
        cutoff = moment - timedelta(days=retention_days)
        deleted = await self._jobs.delete_many({"finished_at": {"$lt": cutoff}})
        return deleted.deleted_count

    async def ensure_indexes(self, retention_days: float) -> None:
        """Indexes for the queries that run often, and the ageing of what is written per job;
        every service asks for them as it starts (creating an index that exists does nothing).
        Stray pieces go `retention_days` after they were saved (0: never); finished jobs are
        deleted as old by the janitor (delete_retired)."""
        await self._jobs.create_index([("status", 1)])
        # The job list: newest first, of one owner or of all, with the id breaking ties.
        await self._jobs.create_index([("owner", 1), ("list_key", -1)])
        await self._jobs.create_index([("list_key", -1)])
        # Fair share (a key's jobs under way, held or not, oldest first) and the queue
        # estimates (an engine's waiting jobs, its latest finished ones).
        await self._jobs.create_index([("owner", 1), ("status", 1), ("held", 1), ("list_key", 1)])
        await self._jobs.create_index([("engine", 1), ("status", 1), ("created_at", -1)])
        await self._pieces.create_index([("job_id", 1), ("index", 1)])
        await self._requests.create_index([("job_id", 1)])
        window = IDEMPOTENCY_WINDOW.total_seconds()
        await expire_after(self._requests, "created_at", window)
        retention = retention_days * 24 * 3600 or None
        # Earlier versions aged jobs with a TTL index; delete_retired does it now.
        await expire_after(self._jobs, "finished_at", None)
        await self._jobs.create_index([("finished_at", 1)])
        await expire_after(self._pieces, "saved_at", retention)
        await expire_after(self._owed, "finished_at", retention)
        await expire_after(self._references, "created_at", REFERENCES_KEPT.total_seconds())

    async def count_unfinished(self, owner: str) -> int:
        return await self._jobs.count_documents(unfinished_of(owner))

    async def count_unfetched(self, owner: str) -> int:
        """`owner`'s unfinished jobs whose media is given by URL and not fetched yet."""
        return await self._jobs.count_documents(
            {**unfinished_of(owner), "source_url": {"$ne": None}, "size_bytes": 0}
        )

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
                try:
                    await collection.drop_index(index["name"])
                except OperationFailure as error:
                    if error.code != _INDEX_NOT_FOUND:  # another service dropped it first
                        raise
        return
    try:
        await collection.create_index(keys, expireAfterSeconds=int(seconds))
    except OperationFailure as error:
        if error.code not in (_INDEX_OPTIONS_CONFLICT, _INDEX_KEY_SPECS_CONFLICT):
            raise
        index = {"keyPattern": {field: 1}, "expireAfterSeconds": int(seconds)}
        await collection.database.command("collMod", collection.name, index=index)


_INDEX_NOT_FOUND = 27
_INDEX_OPTIONS_CONFLICT = 85
_INDEX_KEY_SPECS_CONFLICT = 86


def connect_store(url: str, database: str) -> tuple[AsyncMongoClient[dict[str, Any]], JobStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000
    )
    return client, JobStore(client, database)
