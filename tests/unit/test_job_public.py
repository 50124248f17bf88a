"""The API shows a job without the services' bookkeeping: what GET /v1/jobs/{job_id}, the event
stream and callbacks send is JobPublic, never the stored document as it is."""

from pathlib import Path
from typing import Any, cast

import httpx

from gateway.app import create_app
from gateway.backlog import Backlog
from gateway.schemas import JobPublic
from gateway.services import Services
from gateway.settings import GatewaySettings
from shared.jobs.models import Job, JobStatus, now
from shared.media import MediaPaths
from shared.media_store import FolderStore
from tests.fakes import FakeBroker, FakeFleet, FakeJobs, a_job

JOB_ID = "e" * 32
BOOKKEEPING = {"released_at", "audio_ready_at", "announced_at", "live_ended_at"}
QUEUE_FIGURES = {"queue_position", "estimated_start_seconds"}


def test_every_stored_field_is_either_shown_or_kept_inside() -> None:
    stored, shown = set(Job.model_fields), set(JobPublic.model_fields)
    assert stored - shown == BOOKKEEPING
    assert shown - stored == QUEUE_FIGURES


async def test_a_job_read_through_the_api_carries_no_bookkeeping(tmp_path: Path) -> None:
    jobs, broker, fleet = FakeJobs(), FakeBroker(), FakeFleet()
    moment = now()
    jobs.add(
        a_job(
            JOB_ID,
            JobStatus.DONE,
            text="hello",
            released_at=moment,
            audio_ready_at=moment,
            announced_at=moment,
        )
    )
    settings = GatewaySettings(media_dir=tmp_path)
    fakes = cast(Any, (broker, jobs, fleet))
    services = Services(
        settings, fakes[0], fakes[1], FolderStore(MediaPaths(tmp_path)), cast(Any, None),
        fakes[2], Backlog(*fakes),
    )  # fmt: skip
    app = create_app(settings, services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        job = (await client.get(f"/v1/jobs/{JOB_ID}")).json()
        schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert (job["job_id"], job["status"], job["text"]) == (JOB_ID, "done", "hello")
    assert BOOKKEEPING.isdisjoint(job)
    assert BOOKKEEPING.isdisjoint(schemas["JobPublic"]["properties"])
    assert "Job" not in schemas
