"""Transcript formats: each declared once in shared.formats, and served, documented and offered
from there. A format added there alone reaches the job route, the API document (which the page
reads its download links from) and the command line."""

import importlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import gateway.routes.transcripts
from cli.__main__ import parse
from shared.formats import TRANSCRIPT_FORMATS, TranscriptFormat
from shared.jobs.models import Job, JobStatus
from shared.transcripts import Segment, Word
from tests.fakes import FakeBroker, FakeJobs, a_job
from tests.unit.test_gateway import gateway as in_process_gateway

JOB_ID = "e" * 32


def one_word_a_line(job: Job) -> str:
    return "".join(
        f"{word.word.strip()}\n" for segment in job.segments or [] for word in segment.words
    )


@pytest.fixture
def with_a_new_format(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(
        TRANSCRIPT_FORMATS, "words", TranscriptFormat("words", "text/plain", one_word_a_line)
    )
    importlib.reload(gateway.routes.transcripts)  # routes are typed once, as they are imported
    yield
    monkeypatch.undo()
    importlib.reload(gateway.routes.transcripts)


def app_with_a_finished_job(tmp_path: Path) -> httpx.AsyncClient:
    jobs = FakeJobs()
    words = [Word(word=" Hello", start=0.0, end=0.4), Word(word=" there.", start=0.4, end=0.9)]
    segment = Segment(start=0.0, end=0.9, text="Hello there.", words=words)
    jobs.add(a_job(JOB_ID, JobStatus.DONE, text="Hello there.", segments=[segment]))
    return in_process_gateway(tmp_path, FakeBroker(), jobs)


@pytest.mark.usefixtures("with_a_new_format")
async def test_a_format_added_in_its_one_place_is_served_documented_and_offered(
    tmp_path: Path,
) -> None:
    async with app_with_a_finished_job(tmp_path) as client:
        served = await client.get(f"/v1/jobs/{JOB_ID}/transcript", params={"format": "words"})
        document = (await client.get("/openapi.json")).json()
    assert served.status_code == 200, served.text
    assert served.text == "Hello\nthere.\n"
    assert served.headers["content-type"].startswith("text/plain")
    route = document["paths"]["/v1/jobs/{job_id}/transcript"]["get"]
    [format_parameter] = [each for each in route["parameters"] if each["name"] == "format"]
    assert "words" in format_parameter["schema"]["enum"]
    assert parse(["get", JOB_ID, "--format", "words"]).format == "words"


async def test_every_format_is_served_with_its_media_type(tmp_path: Path) -> None:
    async with app_with_a_finished_job(tmp_path) as client:
        for name, declared in TRANSCRIPT_FORMATS.items():
            served = await client.get(f"/v1/jobs/{JOB_ID}/transcript", params={"format": name})
            assert served.status_code == 200, served.text
            assert served.headers["content-type"].split(";")[0] == declared.media_type
        unknown = await client.get(f"/v1/jobs/{JOB_ID}/transcript", params={"format": "words"})
    assert unknown.status_code == 422
