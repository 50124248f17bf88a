"""What a status poll tells the poller besides the job: while it is under way, when to ask
again and where to wait for the end instead; once it has ended, nothing more."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.jobs.models import JobStatus, Progress
from tests.fakes import FakeBroker, FakeJobs, a_job
from tests.unit.test_gateway import gateway

JOB_ID = "a" * 32


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


@pytest.fixture
async def client(tmp_path: Path, jobs: FakeJobs) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(tmp_path, FakeBroker(), jobs) as client:
        yield client


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RECOGNIZING])
async def test_a_job_under_way_points_the_poller_at_its_event_stream(
    client: httpx.AsyncClient, jobs: FakeJobs, status: JobStatus
) -> None:
    jobs.add(a_job(JOB_ID, status))
    response = await client.get(f"/v1/jobs/{JOB_ID}")
    assert response.status_code == 200, response.text
    assert response.headers["retry-after"] == "2"
    assert response.headers["link"] == f'</v1/jobs/{JOB_ID}/events>; rel="monitor"'


async def test_the_time_to_ask_again_follows_the_jobs_estimate(
    client: httpx.AsyncClient, jobs: FakeJobs
) -> None:
    progress = Progress(pieces_done=1, eta_seconds=14.6)
    jobs.add(a_job(JOB_ID, JobStatus.RECOGNIZING, progress=progress))
    response = await client.get(f"/v1/jobs/{JOB_ID}")
    assert response.headers["retry-after"] == "15"


@pytest.mark.parametrize("status", [JobStatus.DONE, JobStatus.FAILED])
async def test_a_finished_job_asks_for_nothing_more(
    client: httpx.AsyncClient, jobs: FakeJobs, status: JobStatus
) -> None:
    jobs.add(a_job(JOB_ID, status))
    response = await client.get(f"/v1/jobs/{JOB_ID}")
    assert response.status_code == 200, response.text
    assert "retry-after" not in response.headers
    assert "link" not in response.headers
