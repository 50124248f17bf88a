"""The pieces of a long recording in the job store: how it is cut, each piece's transcript as it
is recognized, and the job's progress counted from them once however often a piece is delivered."""

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from shared.jobs.documents import UNFINISHED, to_job
from shared.jobs.models import Job, PieceResult, Progress, now


class PieceRecords:
    """The job store's records of pieces; kept in their own collection, counted in the job."""

    _jobs: AsyncCollection[dict[str, Any]]
    _pieces: AsyncCollection[dict[str, Any]]

    async def delete_pieces(self, job_id: str) -> None:
        """Forget the pieces' transcripts; once the job is done, its own transcript has them."""
        await self._pieces.delete_many({"job_id": job_id})

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
        # The counts done are not stored: to_job counts the recognized pieces.
        started = Progress().model_dump(exclude={"pieces_done", "audio_seconds_done"})
        await self._jobs.update_one(
            {"_id": job_id, "status": {"$in": UNFINISHED}, "progress": None},
            {"$set": {"progress": started}},
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
        recognizers already count against. A recording of one piece is recognized whole: it
        gets its deadline and length, and no progress."""
        totals = {}
        if pieces > 1:
            await self.start_pieces(job_id)  # none yet if no piece went out while converting
            # The totals alone: the estimate made while converting stays.
            totals = {
                "progress.pieces_total": pieces,
                "progress.audio_seconds_total": audio_seconds,
            }
        await self._jobs.update_one(
            # Also matches a job without progress (MongoDB takes a missing path for null).
            {"_id": job_id, "status": {"$in": UNFINISHED}, "progress.pieces_total": None},
            {
                "$set": {
                    **totals,
                    "deadline_at": deadline_at,
                    "duration_seconds": audio_seconds,
                    "conversion_seconds": conversion_seconds,
                }
            },
        )

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
        return to_job(document) if document else None

    async def piece(self, job_id: str, index: int) -> PieceResult | None:
        document = await self._pieces.find_one({"_id": f"{job_id}:{index:05d}"}, {"_id": 0})
        return PieceResult.model_validate(document) if document else None

    async def pieces(self, job_id: str) -> list[PieceResult]:
        """The pieces recognized so far, in the order they are heard."""
        cursor = self._pieces.find({"job_id": job_id}, {"_id": 0}).sort("index", 1)
        return [PieceResult.model_validate(document) async for document in cursor]
