"""Media by URL as a JSON body or an ordinary url-encoded form: the same fields, checks and limits
as a multipart form, through the real app in process."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.schemas import JOB_BODY
from shared.events import MediaUploaded
from tests.fakes import FakeBroker, FakeJobs
from tests.unit.test_gateway import TENANTS, as_key, files_in, gateway

URL = "https://media.example.com/talks/week%201.mp3?signature=abc"
ASKED: dict[str, Any] = {
    "url": URL,
    "language": "de",
    "engine": "whisper-base",
    "task": "translate",
    "hotwords": ["Zarvokian", "Quillmore"],
    "callback_url": "https://hooks.example.com/done",
}


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


@pytest.fixture
async def client(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(tmp_path, broker, jobs) as client:
        yield client


def as_json(fields: dict[str, Any]) -> dict[str, Any]:
    return {"content": json.dumps(fields), "headers": {"Content-Type": "application/json"}}


def as_form(fields: dict[str, Any]) -> dict[str, Any]:
    return {"data": fields}  # httpx sends a list as the field repeated


def as_multipart(fields: dict[str, Any]) -> dict[str, Any]:
    parts = [
        (name, (None, str(value)))
        for name, values in fields.items()
        for value in (values if isinstance(values, list) else [values])
    ]
    return {"files": parts}


BODIES = {"json": as_json, "form": as_form, "multipart": as_multipart}


@pytest.mark.parametrize("body", ["json", "form"])
@pytest.mark.parametrize("route", ["/v1/jobs", "/stt/task"])
async def test_a_url_job_as_json_or_a_plain_form_is_the_job_multipart_would_make(
    client: httpx.AsyncClient, broker: FakeBroker, jobs: FakeJobs, route: str, body: str
) -> None:
    answers = [await client.post(route, **BODIES[way](ASKED)) for way in (body, "multipart")]
    assert answers[0].status_code == answers[1].status_code, answers[0].text
    assert answers[0].status_code in (200, 202), answers[0].text
    made, reference = (jobs.jobs[answer.json()["job_id"]] for answer in answers)
    assert broker.published == [MediaUploaded(job_id=job.job_id) for job in (made, reference)]
    compared = ("source_url", "filename", "size_bytes", "language", "engine", "task", "hotwords")
    assert made.model_dump(include={*compared, "callback"}) == reference.model_dump(
        include={*compared, "callback"}
    )
    assert (made.source_url, made.filename) == (URL, "week 1.mp3")
    assert made.hotwords == ASKED["hotwords"]


@pytest.mark.parametrize("body", ["json", "form"])
@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"language": "en"}, 422, "No media"),
        ({"url": "file:///etc/passwd"}, 422, "absolute http or https URL"),
        ({"url": "https://me:secret@media.example.com/a.mp3"}, 422, "user name or password"),
        ({"url": URL, "engine": "gpt-9"}, 422, "Unknown engine 'gpt-9'"),
        ({"url": URL, "engine": "google"}, 422, "No recognizer serves the engine 'google'"),
        ({"url": URL, "language": "xx"}, 422, "does not transcribe language 'xx'"),
        ({"url": URL, "task": "translate", "engine": "sphinx"}, 422, "cannot translate"),
        ({"url": URL, "hotwords": [f"term{n}" for n in range(21)]}, 422, "at most 20"),
        ({"url": URL, "callback_url": "ftp://example.com/"}, 422, "absolute http or https URL"),
        ({"url": URL, "diarize": "maybe"}, 422, "diarize must be true or false"),
        ({"url": URL, "speakers": 0}, 422, "whole number from 1"),
        ({"url": URL, "file": "talk.mp3"}, 422, "only be sent in a multipart/form-data"),
        (
            {
                "url": URL,
                "speaker_names[]": ["Ada"],
                "speaker_references[]": ["data:audio/wav;base64,UklG"],
            },
            422,
            "only be sent in a multipart/form-data",
        ),
        ({"url": URL, "notes": "x" * (65 * 1024)}, 400, "bytes a job's fields may take"),
    ],
)
async def test_a_url_job_in_any_body_is_refused_as_multipart_would_refuse_it(
    client: httpx.AsyncClient,
    broker: FakeBroker,
    jobs: FakeJobs,
    tmp_path: Path,
    body: str,
    fields: dict[str, Any],
    status: int,
    message: str,
) -> None:
    response = await client.post("/v1/jobs", **BODIES[body](fields))
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert (broker.published, jobs.jobs) == ([], {})
    assert await asyncio.to_thread(files_in, tmp_path) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "JSON body is malformed"),
        ("[" * 60_000, "nested too deeply"),
        ('["https://media.example.com/a.mp3"]', "must be an object"),
        ('{"url": {"href": "https://media.example.com/a.mp3"}}', "a string, a number"),
    ],
)
async def test_a_json_body_that_is_not_an_object_of_fields_is_refused(
    client: httpx.AsyncClient, jobs: FakeJobs, content: str, message: str
) -> None:
    response = await client.post(
        "/v1/jobs", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert message in response.json()["detail"]
    assert jobs.jobs == {}


async def test_a_json_body_is_held_to_the_keys_limit_on_urls_waiting_to_be_fetched(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs
) -> None:
    key = as_key("b-s3cret")
    async with gateway(tmp_path, broker, jobs, api_keys=TENANTS, max_fetches_per_key=1) as client:
        first = await client.post("/v1/jobs", headers=key, json={"url": URL})
        second = await client.post("/v1/jobs", headers=key, data={"url": URL})
    assert (first.status_code, second.status_code) == (202, 429)
    assert "STT_MAX_FETCHES_PER_KEY" in second.json()["detail"]


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/stt/native"])
async def test_routes_that_answer_with_the_text_still_want_a_file(
    client: httpx.AsyncClient, jobs: FakeJobs, route: str
) -> None:
    response = await client.post(route, json={"url": URL, "model": "whisper-1"})
    assert response.status_code == 400, response.text
    assert "No file" in response.text
    assert jobs.jobs == {}


async def test_the_openapi_document_describes_the_json_and_form_bodies(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    for path in ("/v1/jobs", "/stt/task"):
        content = document["paths"][path]["post"]["requestBody"]["content"]
        for kind in ("application/json", "application/x-www-form-urlencoded"):
            schema = content[kind]["schema"]
            assert schema["required"] == ["url"]
            assert "file" not in schema["properties"]
            assert "speaker_references[]" not in schema["properties"]
            assert {"language", "engine", "hotwords", "callback_url"} <= set(schema["properties"])
    assert set(JOB_BODY["requestBody"]["content"]) == {
        "multipart/form-data",
        "application/json",
        "application/x-www-form-urlencoded",
    }
