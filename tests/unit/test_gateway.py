"""The gateway's HTTP surface in process, through httpx's ASGI transport: the real app and
routes, with the broker, job store and fleet replaced by stand-ins, and the real media folder."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from pydantic import SecretStr

from gateway.app import create_app
from gateway.backlog import Backlog
from gateway.callbacks import CallbackHandler
from gateway.finished import FinishedHandler
from gateway.settings import GatewaySettings
from gateway.submit import Services
from shared.events import MediaUploaded, TranscriptDone
from shared.jobs import JobStatus
from shared.media import MediaPaths
from shared.store import FolderStore
from tests.fakes import FakeBroker, FakeFleet, FakeJobs

KEY = "team-s3cret"


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


def gateway(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, **settings: Any
) -> httpx.AsyncClient:
    configured = GatewaySettings(media_dir=tmp_path, max_upload_bytes=1024 * 1024, **settings)
    fakes = cast(Any, (broker, jobs, FakeFleet()))
    services = Services(
        configured,
        fakes[0],
        fakes[1],
        FolderStore(MediaPaths(tmp_path)),
        cast(Any, None),  # the event stream's watcher: not used by these routes
        fakes[2],
        Backlog(*fakes),
    )
    app = create_app(configured, services)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


Form = dict[str, tuple[str | None, bytes | str]]


@pytest.fixture
def speech(clips: dict[str, Path]) -> Form:
    """An upload form with a short spoken sentence as its file."""
    return {"file": ("talk.wav", clips["wav"].read_bytes())}


@pytest.fixture
async def client(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(tmp_path, broker, jobs) as client:
        yield client


@pytest.fixture
async def keyed(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(tmp_path, broker, jobs, api_keys=(SecretStr(KEY),)) as client:
        yield client


async def test_an_upload_is_stored_recorded_and_announced(
    client: httpx.AsyncClient,
    broker: FakeBroker,
    jobs: FakeJobs,
    clips: dict[str, Path],
    tmp_path: Path,
) -> None:
    response = await client.post(
        "/v1/jobs", files={"file": ("talk.mp3", clips["mp3"].read_bytes())}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert broker.published == [MediaUploaded(job_id=job_id)]
    assert jobs.jobs[job_id].filename == "talk.mp3"
    assert MediaPaths(tmp_path).upload(job_id).read_bytes() == clips["mp3"].read_bytes()


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"file": ("notes.mp3", b"just words\n" * 50)}, 415, "not audio or video"),
        ({"language": (None, "en")}, 400, "No file"),
        ({"engine": (None, "gpt-9")}, 422, "Unknown engine 'gpt-9'"),
        ({"engine": (None, "google")}, 422, "No recognizer serves the engine 'google'"),
        ({"language": (None, "xx")}, 422, "does not transcribe language 'xx'"),
        ({"task": (None, "translate"), "engine": (None, "sphinx")}, 422, "cannot translate"),
        ({"task": (None, "summarise")}, 422, "Unknown task 'summarise'"),
        ({"hotwords": (None, ",".join(f"term{n}" for n in range(21)))}, 422, "at most 20"),
        ({"hotwords": (None, "x" * 201)}, 422, "200 characters"),
        ({"callback_url": (None, "http://u:p@example.com/")}, 422, "user name or password"),
        ({"callback_url": (None, "ftp://example.com/")}, 422, "absolute http or https URL"),
        ({"file": ("big.wav", b"RIFF" + bytes(2 * 1024 * 1024))}, 413, "larger than"),
    ],
)
async def test_bad_uploads_are_refused_with_a_reason_and_leave_nothing(
    client: httpx.AsyncClient,
    broker: FakeBroker,
    jobs: FakeJobs,
    speech: Form,
    tmp_path: Path,
    form: Form,
    status: int,
    message: str,
) -> None:
    files = {**speech, **form}
    if status == 400:
        files.pop("file")
    response = await client.post("/v1/jobs", files=files)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert (broker.published, jobs.jobs) == ([], {})
    assert await asyncio.to_thread(files_in, tmp_path) == []


async def test_task_and_hotwords_are_kept_with_the_job(
    client: httpx.AsyncClient, jobs: FakeJobs, speech: Form
) -> None:
    translate = {"task": (None, "translate"), "hotwords": (None, " Zarvokian, Quillmore,")}
    asked = await client.post("/v1/jobs", files={**speech, **translate})
    again = {"hotwords": (None, "Quillmore"), "language": (None, "de")}
    plain = await client.post("/v1/jobs", files={**speech, **again})
    assert (asked.status_code, plain.status_code) == (202, 202)
    translating = jobs.jobs[asked.json()["job_id"]]
    transcribing = jobs.jobs[plain.json()["job_id"]]
    # Nothing said of the language: what is translated is detected, not the default language.
    assert (translating.task, translating.language) == ("translate", "auto")
    assert translating.hotwords == ["Zarvokian", "Quillmore"]
    assert (transcribing.task, transcribing.language) == ("transcribe", "de")
    assert transcribing.hotwords == ["Quillmore"]


def files_in(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


async def test_a_wrong_method_is_told_which_methods_the_path_has(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/jobs/" + "0" * 32)
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert (await client.put("/v1/jobs")).headers["allow"] == "GET, POST"


async def test_unknown_and_malformed_job_ids(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/jobs/" + "0" * 32)).status_code == 404
    assert (await client.get("/v1/jobs/not-a-job-id")).status_code == 422


async def test_with_keys_on_a_request_without_one_is_refused_in_each_routes_shape(
    keyed: httpx.AsyncClient,
) -> None:
    native = await keyed.get("/v1/jobs/" + "0" * 32)
    openai = await keyed.post("/v1/audio/transcriptions", files={"model": (None, "whisper-1")})
    wrong = await keyed.get("/v1/jobs/" + "0" * 32, headers={"Authorization": "Bearer nope"})
    right = await keyed.get("/v1/jobs/" + "0" * 32, headers={"Authorization": f"Bearer {KEY}"})
    assert (native.status_code, native.headers["www-authenticate"]) == (401, "Bearer")
    assert "valid API key" in native.json()["detail"]
    assert openai.status_code == 401
    assert openai.json()["error"]["code"] == "invalid_api_key"
    assert wrong.status_code == 401
    assert right.status_code == 404
    assert (await keyed.get("/healthz")).status_code == 200


@pytest.mark.parametrize(
    ("route", "fields", "code", "param"),
    [
        ("transcriptions", {"model": "gpt-5-audio"}, "model_not_found", "model"),
        (
            "transcriptions",
            {"model": "sphinx", "language": "de"},
            "unsupported_language",
            "language",
        ),
        (
            "transcriptions",
            {"model": "whisper-1", "response_format": "mp3"},
            None,
            "response_format",
        ),
        (
            "transcriptions",
            {"model": "whisper-1", "hotwords": "x" * 201},
            "invalid_value",
            "hotwords",
        ),
        ("translations", {"model": "faster-whisper"}, "unsupported_task", "model"),
        ("translations", {"model": "sphinx"}, "unsupported_task", "model"),
    ],
)
async def test_openai_errors_name_the_parameter_at_fault(
    client: httpx.AsyncClient,
    speech: Form,
    route: str,
    fields: dict[str, str],
    code: str | None,
    param: str,
) -> None:
    response = await client.post(
        f"/v1/audio/{route}",
        files={**speech, **{name: (None, value) for name, value in fields.items()}},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["type"]) == (param, "invalid_request_error")
    if code is not None:
        assert error["code"] == code


async def test_a_retried_upload_with_the_same_key_returns_the_first_job(
    client: httpx.AsyncClient,
    broker: FakeBroker,
    jobs: FakeJobs,
    speech: Form,
    tmp_path: Path,
) -> None:
    first, again, other = [
        await client.post("/v1/jobs", files=speech, headers={"Idempotency-Key": key})
        for key in ("order-17", "order-17", "order-18")
    ]
    assert [response.status_code for response in (first, again, other)] == [202, 202, 202]
    assert again.json()["job_id"] == first.json()["job_id"] != other.json()["job_id"]
    assert len(broker.published) == len(jobs.jobs) == 2
    uploads = await asyncio.to_thread(files_in, tmp_path)
    assert sorted(path.name for path in uploads) == sorted(jobs.jobs)


async def test_an_idempotency_key_is_kept_per_caller(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, speech: Form
) -> None:
    keys = (SecretStr("billing:b-s3cret"), SecretStr("support:s-s3cret"))
    async with gateway(tmp_path, broker, jobs, api_keys=keys) as client:
        answers = [
            await client.post(
                "/v1/jobs",
                files=speech,
                headers={"Idempotency-Key": "same", "Authorization": f"Bearer {secret}"},
            )
            for secret in ("b-s3cret", "s-s3cret")
        ]
    assert [answer.status_code for answer in answers] == [202, 202]
    assert answers[0].json()["job_id"] != answers[1].json()["job_id"]
    assert sorted(str(job.owner) for job in jobs.jobs.values()) == ["billing", "support"]


async def test_past_the_backlog_limit_an_upload_is_asked_to_come_back_later(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, speech: Form
) -> None:
    async with gateway(tmp_path, broker, jobs, max_backlog_seconds=10) as client:
        accepted = [await client.post("/v1/jobs", files=speech) for _ in range(2)]
        refused = await client.post("/v1/jobs", files=speech)
        openai = await client.post(
            "/v1/audio/transcriptions", files={**speech, "model": (None, "whisper-1")}
        )
    assert [answer.status_code for answer in accepted] == [202, 202]
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "30")
    assert "STT_MAX_BACKLOG_SECONDS" in refused.json()["detail"]
    assert (openai.status_code, openai.headers["retry-after"]) == (429, "30")
    assert openai.json()["error"]["code"] == "rate_limit_exceeded"
    assert len(jobs.jobs) == 2
    assert all(job.duration_seconds for job in jobs.jobs.values())


TENANTS = (SecretStr("billing:b-s3cret"), SecretStr("support:s-s3cret"))


def as_key(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_a_key_sees_only_its_own_jobs_and_an_admin_key_sees_all(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, speech: Form
) -> None:
    settings = {"api_keys": TENANTS, "admin_keys": (SecretStr("ops:o-s3cret"),)}
    async with gateway(tmp_path, broker, jobs, **settings) as client:
        billing = (await client.post("/v1/jobs", files=speech, headers=as_key("b-s3cret"))).json()
        job = f"/v1/jobs/{billing['job_id']}"
        support = as_key("s-s3cret")
        foreign = [
            await client.get(job, headers=support),
            await client.get(f"{job}/transcript", headers=support),
            await client.get(f"{job}/events", headers=support),
            await client.post(f"{job}/cancel", headers=support),
            await client.delete(job, headers=support),
            await client.get(f"/stt/task/{billing['job_id']}", headers=support),
        ]
        support_list = (await client.get("/v1/jobs", headers=support)).json()
        nosy = await client.get("/v1/jobs?owner=billing", headers=support)
        admin = as_key("o-s3cret")
        seen_by_admin = await client.get(job, headers=admin)
        admin_list = (await client.get("/v1/jobs?owner=billing", headers=admin)).json()
        own = await client.get(job, headers=as_key("b-s3cret"))
    assert [answer.status_code for answer in foreign] == [404] * len(foreign)
    assert support_list == {"jobs": [], "next": None}
    assert nosy.status_code == 403
    assert seen_by_admin.status_code == own.status_code == 200
    assert [summary["job_id"] for summary in admin_list["jobs"]] == [billing["job_id"]]
    assert own.json()["owner"] == "billing"


async def test_past_its_cap_a_busy_key_waits_while_another_key_is_served(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, speech: Form
) -> None:
    async with gateway(tmp_path, broker, jobs, api_keys=TENANTS, max_jobs_per_key=2) as client:
        busy = [
            await client.post("/v1/jobs", files=speech, headers=as_key("b-s3cret"))
            for _ in range(3)
        ]
        other = await client.post("/v1/jobs", files=speech, headers=as_key("s-s3cret"))
    assert [answer.status_code for answer in busy] == [202, 202, 429]
    assert busy[2].headers["retry-after"] == "30"
    assert "STT_MAX_JOBS_PER_KEY" in busy[2].json()["detail"]
    assert other.status_code == 202


async def test_the_job_list_pages_newest_first_with_a_cursor(
    client: httpx.AsyncClient, speech: Form
) -> None:
    made = [(await client.post("/v1/jobs", files=speech)).json()["job_id"] for _ in range(5)]
    first = (await client.get("/v1/jobs?limit=2")).json()
    second = (await client.get(f"/v1/jobs?limit=2&cursor={first['next']}")).json()
    third = (await client.get(f"/v1/jobs?limit=2&cursor={second['next']}")).json()
    listed = [summary["job_id"] for page in (first, second, third) for summary in page["jobs"]]
    assert listed == made[::-1]
    assert third["next"] is None
    assert set(first["jobs"][0]).isdisjoint({"text", "segments"})
    assert (await client.get("/v1/jobs?cursor=%%%")).status_code == 400
    assert (await client.get("/v1/jobs?limit=101")).status_code == 422


async def test_with_a_fair_share_a_busy_key_waits_behind_its_own_jobs_not_before_others(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, speech: Form
) -> None:
    async with gateway(tmp_path, broker, jobs, api_keys=TENANTS, fair_share_per_key=1) as client:
        busy = [
            (await client.post("/v1/jobs", files=speech, headers=as_key("b-s3cret"))).json()
            for _ in range(3)
        ]
        other = (await client.post("/v1/jobs", files=speech, headers=as_key("s-s3cret"))).json()
    sent_at_first = [event.job_id for event in broker.published]
    held_at_first = [jobs.jobs[job["job_id"]].held for job in busy]
    first = busy[0]["job_id"]
    await jobs.advance(first, JobStatus.DONE, allowed_from=(JobStatus.QUEUED,))
    settings = GatewaySettings(media_dir=tmp_path, fair_share_per_key=1)
    async with httpx.AsyncClient() as http:
        callbacks = CallbackHandler(cast(Any, jobs), cast(Any, broker), http, None)
        finished = FinishedHandler(cast(Any, jobs), broker.publish, settings, callbacks)
        await finished(TranscriptDone(job_id=first))
    assert sent_at_first == [first, other["job_id"]]
    assert held_at_first == [False, True, True]
    assert broker.published[-1] == MediaUploaded(job_id=busy[1]["job_id"])
    assert [jobs.jobs[job["job_id"]].held for job in busy] == [False, False, True]
