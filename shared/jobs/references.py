"""Known speakers' clips in the job store: kept beside the job, not in it, since the job document
is read often and the clips once a piece."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from shared.jobs.models import SpeakerReference

# Known speakers' clips outlive any job that can still use them; the job's deletion removes them.
REFERENCES_KEPT = timedelta(days=7)


class SpeakerReferenceRecords:
    _references: AsyncCollection[dict[str, Any]]

    async def keep_speaker_references(
        self, job_id: str, created: datetime, references: Sequence[SpeakerReference]
    ) -> None:
        await self._references.insert_one(
            {
                "_id": job_id,
                "created_at": created,
                "references": [reference.model_dump() for reference in references],
            }
        )

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
