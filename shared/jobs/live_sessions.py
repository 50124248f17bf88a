"""Live sessions as the job store sees them: each is a live job whose session has not ended, kept
marked as alive by the gateway holding it, so that every gateway counts the same sessions and a
session whose gateway died stops counting soon after."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from shared.jobs.documents import stored_before, unfinished_of
from shared.jobs.models import now


class LiveSessionRecords:
    _jobs: AsyncCollection[dict[str, Any]]

    async def note_live_alive(self, job_id: str) -> None:
        """The gateway holding the session still does."""
        await self._jobs.update_one(
            {"_id": job_id, "live": True, "live_ended_at": None}, {"$set": {"live_seen_at": now()}}
        )

    async def count_live_sessions(
        self, owner: str, *, seen_since: datetime, created_before: str
    ) -> int:
        """`owner`'s open sessions that were alive at `seen_since` and began before the job
        whose list key is `created_before` (so that of two sessions started at once on two
        gateways, the later one is refused, whichever counts first)."""
        cursor = self._jobs.find(
            {**unfinished_of(owner), "live": True, "live_ended_at": None},
            {"list_key": 1, "live_seen_at": 1},
        )
        return len(
            [
                document
                async for document in cursor
                if document.get("list_key", "") < created_before
                and not stored_before(document.get("live_seen_at"), seen_since)
            ]
        )

    async def note_interim_pass(self, job_id: str, out_until: datetime | None) -> None:
        """A session's interim pass is with the recognizers until `out_until` at the latest, or
        no longer (None): meanwhile it takes a slot, and counts in its key's fair share."""
        await self._jobs.update_one({"_id": job_id}, {"$set": {"interim_out_until": out_until}})

    async def live_utterances_in_flight(self, owner: str) -> int:
        """Utterances of `owner`'s live sessions handed to the recognizers and not recognized,
        and their interim passes out."""
        cursor = self._jobs.find(
            {**unfinished_of(owner), "live": True},
            {"progress": 1, "recognized_pieces": 1, "interim_out_until": 1},
        )
        moment = now()
        return sum(
            [
                ((document.get("progress") or {}).get("pieces_total") or 0)
                - len(document.get("recognized_pieces") or {})
                + _is_out(document.get("interim_out_until"), moment)
                async for document in cursor
            ]
        )


def _is_out(out_until: Any, moment: datetime) -> int:
    return int(out_until is not None and not stored_before(out_until, moment))
