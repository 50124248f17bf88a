"""Stand-ins for what lies outside a handler, in the spirit of FastStream's test broker: the
handler under test is the real one, called as a plain function."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.events import Event
from shared.faults import BrokerUnavailable
from shared.jobs.deadline import deadline_for
from shared.jobs.listing import Listing, list_key
from shared.jobs.models import (
    ErrorCode,
    Job,
    JobError,
    JobStatus,
    Progress,
    SpeakerReference,
    now,
    owes_callback,
)
from shared.jobs.options import JobOptions
from shared.settings import CommonSettings
from shared.topology import Topology, build_topology
from transcoder.fetch import Fetched


def a_job(job_id: str, status: JobStatus = JobStatus.RECOGNIZING, **fields: Any) -> Job:
    created = now() - timedelta(hours=2)
    values: dict[str, Any] = {
        "filename": "talk.wav",
        "size_bytes": 1000,
        "engine": "faster-whisper",
        "language": "en",
        "created_at": created,
        "updated_at": created,
        **fields,
        "job_id": job_id,
        "status": status,
    }
    return Job.model_validate(values)


@dataclass
class FakeJobs:
    """The job store's calls that handlers and routes make, on jobs kept in memory; held to the
    real store's behaviour by tests/integration/test_store_contract.py."""

    jobs: dict[str, Job] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)
    owed: dict[str, Job] = field(default_factory=dict)
    recognized: dict[str, dict[int, float]] = field(default_factory=dict)
    piece_slots: dict[str, int] = field(default_factory=dict)
    references: dict[str, list[SpeakerReference]] = field(default_factory=dict)
    interim_out_until: dict[str, datetime | None] = field(default_factory=dict)

    def add(self, job: Job) -> None:
        self.jobs[job.job_id] = job

    async def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    async def ping(self) -> None:
        return None

    async def fail(self, job_id: str, code: ErrorCode, message: str) -> Job | None:
        unfinished = tuple(status for status in JobStatus if not status.is_final)
        error = JobError(code=code, message=message)
        return await self.advance(job_id, JobStatus.FAILED, allowed_from=unfinished, error=error)

    async def create(
        self, job_id: str, options: JobOptions, *, settings: CommonSettings, **fields: Any
    ) -> Job:
        references = fields.pop("speaker_references", ())
        if references:
            self.references[job_id] = list(references)
        callback_url = fields.pop("callback_url", None)
        callback = {"callback": {"url": callback_url}} if callback_url else {}
        stored = {**options.model_dump(), **fields, **callback}
        job = a_job(job_id, JobStatus.QUEUED, created_at=now(), **stored)
        job.deadline_at = deadline_for(job, settings)
        self.add(job)
        return job

    async def delete(self, job_id: str) -> None:
        job = self.jobs.pop(job_id, None)
        if job is not None and owes_callback(job):
            self.owed[job_id] = job
        self.requests = {key: held for key, held in self.requests.items() if held != job_id}

    async def owed_callback(self, job_id: str) -> Job | None:
        return self.owed.get(job_id)

    async def record_callback(
        self, job_id: str, *, delivered: bool, error: str | None = None, gave_up: bool = False
    ) -> None:
        for kept in (self.jobs, self.owed):
            job = kept.get(job_id)
            if job is None or job.callback is None:
                continue
            callback = job.callback.model_copy(
                update={
                    "attempts": job.callback.attempts + 1,
                    "error": error,
                    "gave_up": gave_up,
                    "delivered_at": now() if delivered else job.callback.delivered_at,
                }
            )
            kept[job_id] = job.model_copy(update={"callback": callback})
        if delivered or gave_up:
            self.owed.pop(job_id, None)

    async def claim_request(self, key: str, job_id: str) -> str | None:
        earlier = self.requests.setdefault(key, job_id)
        return None if earlier == job_id else earlier

    async def release_request(self, key: str, job_id: str) -> None:
        if self.requests.get(key) == job_id:
            del self.requests[key]

    async def queued_audio_seconds(self, owner: str | None = None) -> float:
        return sum(
            max(
                (job.duration_seconds or 0.0)
                - (job.progress.audio_seconds_done if job.progress else 0.0),
                0.0,
            )
            for job in self._unfinished(owner)
        )

    async def recognition_seconds_per_piece(self, _engine: str, _sample: int) -> float | None:
        return None

    async def waiting_since(self, _engine: str) -> list[datetime]:
        return []

    async def page(self, listing: Listing, limit: int) -> list[Job]:
        chosen = [
            job
            for job in self.jobs.values()
            if listing.owner in (None, job.owner)
            and listing.status in (None, job.status)
            and listing.engine in (None, job.engine)
            and (listing.after is None or list_key(job) < listing.after)
            and (listing.created_after is None or job.created_at > listing.created_after)
            and (listing.created_before is None or job.created_at < listing.created_before)
        ]
        chosen.sort(key=list_key, reverse=True)
        return chosen[:limit]

    async def count_dispatched(self, owner: str) -> int:
        return sum(self._in_the_queues(job) for job in self._unfinished(owner) if not job.held)

    async def note_interim_pass(self, job_id: str, out_until: datetime | None) -> None:
        self.interim_out_until[job_id] = out_until

    def _in_the_queues(self, job: Job) -> int:
        """A file job is one; a live session, its utterances not recognized yet and its interim
        pass out."""
        if not job.live:
            return 1
        progress = job.progress
        utterances = (progress.pieces_total or 0) - progress.pieces_done if progress else 0
        out_until = self.interim_out_until.get(job.job_id)
        return utterances + int(out_until is not None and out_until > now())

    async def next_held(self, owner: str) -> Job | None:
        held = [job for job in self._unfinished(owner) if job.held]
        return min(held, key=list_key, default=None)

    async def release(self, job: Job, settings: CommonSettings) -> bool:
        if not self.jobs[job.job_id].held:
            return False
        released = job.model_copy(update={"released_at": now()})
        self._update(
            job.job_id,
            held=False,
            released_at=released.released_at,
            deadline_at=deadline_for(released, settings),
        )
        return True

    async def hold_again(self, job_id: str) -> None:
        self._update(job_id, held=True)

    async def owners_holding(self) -> set[str]:
        return {str(job.owner) for job in self._unfinished(None) if job.held and job.owner}

    async def count_unfinished(self, owner: str) -> int:
        return len(self._unfinished(owner))

    async def count_unfetched(self, owner: str) -> int:
        return sum(
            1
            for job in self._unfinished(owner)
            if job.source_url is not None and not job.size_bytes
        )

    def _unfinished(self, owner: str | None) -> list[Job]:
        return [
            job
            for job in self.jobs.values()
            if not job.status.is_final and owner in (None, job.owner)
        ]

    async def advance(
        self, job_id: str, to: JobStatus, *, allowed_from: tuple[JobStatus, ...], **fields: Any
    ) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.status not in allowed_from:
            return None
        moved = job.model_validate(
            {**job.model_dump(), **fields, "status": to, "updated_at": now()}
        )
        if moved.progress is not None and to.is_final:
            moved.progress.eta_seconds = None
        self.jobs[job_id] = moved
        return moved

    async def start_recognizing(self, job_id: str, **fields: Any) -> tuple[Job | None, bool]:
        moved = await self.advance(
            job_id, JobStatus.RECOGNIZING, allowed_from=(JobStatus.TRANSCODING,), **fields
        )
        if moved is not None:
            return moved, True
        job = self.jobs.get(job_id)
        return (
            (job, False)
            if job is not None and job.status is JobStatus.RECOGNIZING
            else (None, False)
        )

    async def set_eta(self, job_id: str, eta_seconds: float | None) -> None:
        job = self.jobs[job_id]
        if job.progress is not None and not job.status.is_final:
            self._update(
                job_id, progress=job.progress.model_copy(update={"eta_seconds": eta_seconds})
            )

    async def claim_piece_slots(self, job_id: str, slots: int) -> int:
        return self.piece_slots.setdefault(job_id, slots)

    async def start_pieces(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job.progress is None and not job.status.is_final:
            self._update(job_id, progress=self._counted(job_id, Progress()))

    async def plan_pieces(
        self,
        job_id: str,
        *,
        pieces: int,
        audio_seconds: float,
        deadline_at: datetime,
        conversion_seconds: float | None = None,
    ) -> None:
        if pieces > 1:
            await self.start_pieces(job_id)
        job = self.jobs[job_id]
        if job.status.is_final or (job.progress and job.progress.pieces_total is not None):
            return
        progress = job.progress and job.progress.model_copy(
            update={"pieces_total": pieces, "audio_seconds_total": audio_seconds}
        )
        self._update(
            job_id,
            progress=progress and self._counted(job_id, progress),
            deadline_at=deadline_at,
            duration_seconds=audio_seconds,
            conversion_seconds=conversion_seconds,
        )

    async def has_ended(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        return job is None or job.status.is_final

    async def is_recognized(self, job_id: str, index: int) -> bool:
        return index in self.recognized.get(job_id, {})

    async def count_piece(self, job_id: str, index: int, seconds: float) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or await self.is_recognized(job_id, index):
            return None
        self.recognized.setdefault(job_id, {})[index] = seconds
        progress = job.progress and self._counted(job_id, job.progress)
        self._update(job_id, progress=progress, updated_at=now())
        return self.jobs[job_id]

    def _counted(self, job_id: str, progress: Progress) -> Progress:
        """As the real store does: the progress counted from the pieces recognized."""
        recognized = self.recognized.get(job_id, {})
        return progress.model_copy(
            update={
                "pieces_done": len(recognized),
                "audio_seconds_done": float(sum(recognized.values())),
            }
        )

    async def audio_ready(self, job_id: str) -> None:
        self._update(job_id, audio_ready_at=now())

    def _update(self, job_id: str, **fields: Any) -> None:
        self.jobs[job_id] = self.jobs[job_id].model_copy(update=fields)

    async def note_announced(self, job_id: str) -> None:
        self.jobs[job_id] = self.jobs[job_id].model_copy(update={"announced_at": now()})

    async def overdue(self, moment: datetime) -> list[str]:
        return [
            job.job_id
            for job in self.jobs.values()
            if not job.status.is_final
            and not job.held
            and job.deadline_at is not None
            and job.deadline_at < moment
        ]

    async def delete_retired(self, retention_days: float, moment: datetime) -> int:
        if not retention_days:
            return 0
        cutoff = moment - timedelta(days=retention_days)
        retired = [
            job.job_id
            for job in self.jobs.values()
            if job.status.is_final and job.stage_times.get(job.status, job.updated_at) < cutoff
        ]
        for job_id in retired:
            del self.jobs[job_id]
        return len(retired)

    async def unannounced(self, before: datetime) -> list[Job]:
        return [
            job
            for job in self.jobs.values()
            if job.status.is_final and job.announced_at is None and job.updated_at < before
        ]


@dataclass
class FakeBroker:
    """Publishes into a list; the first `failures` publishes fail as if the broker were away,
    and while `away` it answers no question about its queues."""

    failures: int = 0
    published: list[Event] = field(default_factory=list)
    away: bool = False

    async def publish(self, event: Event) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise BrokerUnavailable("publishing: the broker is away (fake)")
        self.published.append(event)

    def retries_left(self) -> int:
        return 3

    @property
    def topology(self) -> Topology:
        return build_topology(CommonSettings())

    @property
    def is_connected(self) -> bool:
        return not self.away

    async def queued_messages(self, queue: str) -> int:
        if self.away:
            raise BrokerUnavailable(f"asking about {queue}: not connected (fake)")
        return 0


@dataclass
class FakeFleet:
    """No recognizer has reported: only the configured engines are served (and labelled for,
    when `speaker_labels_served` names them)."""

    speaker_labels_served: set[str] = field(default_factory=set)

    async def live(self) -> list[Any]:
        return []

    async def served_recently(self) -> set[str]:
        return set()

    async def report(self, _entry: Any) -> None:
        return None

    async def speaker_labels_served_recently(self) -> set[str]:
        return set(self.speaker_labels_served)


async def no_fetch(url: str, _destination: Path) -> Fetched:
    """The transcoder's fetch, for tests whose jobs are uploads."""
    raise AssertionError(f"{url} fetched: these jobs are uploads")
