"""The gateway's HTTP surface in process, through httpx's ASGI transport: the real app and
routes, with the broker, job store and fleet replaced by stand-ins, and the real media folder."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from pydantic import SecretStr

from gateway.app import create_app
from gateway.auth import PUBLIC_PATHS
from gateway.backlog import Backlog
from gateway.callbacks import CallbackHandler
from gateway.finished import FinishedHandler
from gateway.services import Services
from gateway.settings import GatewaySettings
from gateway.upload import drain
from recognizer.health import Health
from shared.events import MediaUploaded, TranscriptDone
from shared.jobs.models import JobStatus
from shared.media import MediaPaths
from shared.media_store import FolderStore
from tests.fakes import FakeBroker, FakeFleet, FakeJobs
from tests.routes import job_operations, operations

KEY = "team-s3cret"


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


def gateway(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, watcher: Any = None, **settings: Any
) -> httpx.AsyncClient:
    configured = GatewaySettings(media_dir=tmp_path, max_upload_bytes=1024 * 1024, **settings)
    fakes = cast(Any, (broker, jobs, FakeFleet()))
    services = Services(
        configured,
        fakes[0],
        fakes[1],
        FolderStore(MediaPaths(tmp_path)),
        watcher,  # the event stream's watcher: not used by most of these routes
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
        ({"language": (None, "en")}, 422, "No media"),
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
    if message == "No media":
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


async def test_a_retry_after_its_job_was_deleted_makes_a_new_job(
    client: httpx.AsyncClient, jobs: FakeJobs, speech: Form
) -> None:
    retry = {"Idempotency-Key": "order-19"}
    first = await client.post("/v1/jobs", files=speech, headers=retry)
    job = jobs.jobs[first.json()["job_id"]]
    jobs.add(job.model_copy(update={"status": JobStatus.DONE, "text": "hello"}))
    deleted = await client.delete(f"/v1/jobs/{job.job_id}")
    assert deleted.status_code == 204, deleted.text
    again = await client.post("/v1/jobs", files=speech, headers=retry)
    assert again.status_code == 202, again.text
    assert again.json()["job_id"] != first.json()["job_id"]
    assert list(jobs.jobs) == [again.json()["job_id"]]


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
            await client.request(method, path.format(job_id=billing["job_id"]), headers=support)
            for method, path in job_operations()
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


@pytest.mark.parametrize(
    ("created_after", "status"),
    [
        ("2026-11-29T09:30:00+22:00", 200),
        ("2026-11-29T09:30:00", 200),
        ("0001-01-01T00:00:00+22:00", 422),
        ("9999-12-31T23:59:59-12:00", 422),
        ("1764408600", 422),
    ],
)
async def test_the_job_list_reads_times_in_any_zone_and_refuses_one_utc_cannot_hold(
    client: httpx.AsyncClient, created_after: str, status: int
) -> None:
    answer = await client.get("/v1/jobs", params={"created_after": created_after})
    assert answer.status_code == status, answer.text


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


async def test_a_job_is_shown_from_the_database_while_the_broker_is_away(
    client: httpx.AsyncClient, broker: FakeBroker, speech: Form
) -> None:
    job_id = (await client.post("/v1/jobs", files=speech)).json()["job_id"]
    broker.away = True
    response = await client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    assert response.json()["queue_position"] is None


async def test_a_key_sending_too_many_uploads_at_once_is_refused_before_the_body_is_read(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, speech: Form
) -> None:
    body, content_type = multipart_body(speech)
    arrived = [asyncio.Event() for _ in range(2)]
    go_on = asyncio.Event()

    async def slowly(started: asyncio.Event) -> AsyncIterator[bytes]:
        yield body[:100]
        started.set()
        await go_on.wait()
        yield body[100:]

    async def never_read() -> AsyncIterator[bytes]:
        raise AssertionError("the body of the upload past the limit was read")
        yield b""

    headers = {**as_key("b-s3cret"), "Content-Type": content_type}
    settings = {"api_keys": TENANTS, "max_uploads_per_key": 2}
    async with gateway(tmp_path, broker, jobs, **settings) as client:
        sending = [
            asyncio.create_task(client.post("/v1/jobs", content=slowly(started), headers=headers))
            for started in arrived
        ]
        for started in arrived:
            await started.wait()
        refused = await client.post("/v1/jobs", content=never_read(), headers=headers)
        other_key = await client.post("/v1/jobs", files=speech, headers=as_key("s-s3cret"))
        go_on.set()
        accepted = await asyncio.gather(*sending)
        after = await client.post("/v1/jobs", files=speech, headers=as_key("b-s3cret"))
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "30")
    assert "STT_MAX_UPLOADS_PER_KEY" in refused.json()["detail"]
    assert other_key.status_code == 202
    assert [answer.status_code for answer in accepted] == [202, 202]
    assert after.status_code == 202


async def test_an_upload_refused_for_what_it_holds_counts_as_in_flight_while_its_rest_is_read(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    body, content_type = multipart_body({"file": ("notes.txt", b"plain words " * 4096)})
    draining = asyncio.Event()
    go_on = asyncio.Event()

    async def watched_drain(*args: Any) -> None:
        draining.set()
        await drain(*args)

    async def slowly() -> AsyncIterator[bytes]:
        yield body[:4096]
        await go_on.wait()
        yield body[4096:]

    monkeypatch.setattr("gateway.submit.drain", watched_drain)
    headers = {**as_key("b-s3cret"), "Content-Type": content_type}
    settings = {"api_keys": TENANTS, "max_uploads_per_key": 1}
    async with gateway(tmp_path, broker, jobs, **settings) as client:
        sending = asyncio.create_task(client.post("/v1/jobs", content=slowly(), headers=headers))
        await draining.wait()
        while_draining = await client.post("/v1/jobs", content=b"", headers=headers)
        go_on.set()
        refused = await sending
    assert refused.status_code == 415
    assert while_draining.status_code == 429


def multipart_body(form: Form) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://gateway/v1/jobs", files=form)
    return request.read(), request.headers["content-type"]


@pytest.mark.parametrize(("method", "path"), operations())
async def test_every_route_refuses_a_request_without_a_key_unless_declared_public(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, speech: Form, method: str, path: str
) -> None:
    async with gateway(tmp_path, broker, jobs, api_keys=TENANTS) as client:
        created = await client.post("/v1/jobs", files=speech, headers=as_key("b-s3cret"))
        url = path.format(job_id=created.json()["job_id"])
        anonymous = await client.request(method, url)
        unknown_key = await client.request(method, url, headers=as_key("n0t-a-key"))
    if path in PUBLIC_PATHS:
        assert anonymous.status_code != 401
    else:
        assert (anonymous.status_code, unknown_key.status_code) == (401, 401)


async def test_metrics_name_keys_only_to_an_admin_key(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, speech: Form
) -> None:
    settings = {"api_keys": TENANTS, "admin_keys": (SecretStr("ops:o-s3cret"),)}
    async with gateway(tmp_path, broker, jobs, **settings) as client:
        await client.post("/v1/jobs", files=speech, headers=as_key("b-s3cret"))
        anonymous = (await client.get("/metrics")).text
        tenant = (await client.get("/metrics", headers=as_key("s-s3cret"))).text
        admin = (await client.get("/metrics", headers=as_key("o-s3cret"))).text
    assert 'key="billing"' in admin
    for shown in (anonymous, tenant):
        assert "billing" not in shown
        assert "stt_jobs_accepted_total{engine=" in shown


async def test_readiness_names_no_files_or_jobs(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = "d" * 32
    health = Health(
        cast(Any, FakeFleet()), cast(Any, SimpleNamespace(size=1, busy=0, models={})), ("sphinx",)
    )
    await health.media_missing(f"/srv/media/{job_id}/piece-00001.wav is missing")

    async def live() -> list[Any]:
        return [health.entry]

    monkeypatch.setattr(FakeFleet, "live", lambda _self: live())
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["recognizers"]["sphinx"]["problems"]
    assert job_id not in ready.text
    assert "/srv" not in ready.text


async def test_a_route_added_without_a_word_about_access_needs_a_key(tmp_path: Path) -> None:
    app = create_app(GatewaySettings(media_dir=tmp_path, api_keys=TENANTS))

    @app.get("/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"secret": "exposed"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        anonymous = await client.get("/v1/forgotten")
        known = await client.get("/v1/forgotten", headers=as_key("b-s3cret"))
    assert anonymous.status_code == 401
    assert known.json() == {"secret": "exposed"}


@pytest.mark.parametrize("route", ["/v1/jobs", "/stt/task"])
async def test_media_by_url_is_accepted_at_once_and_left_to_the_transcoder(
    client: httpx.AsyncClient, broker: FakeBroker, jobs: FakeJobs, tmp_path: Path, route: str
) -> None:
    url = "https://media.example.com/talks/week%201.mp3?signature=abc"
    response = await client.post(route, files={"url": (None, url), "language": (None, "en")})
    assert response.status_code in (200, 202), response.text
    job_id = response.json()["job_id"]
    assert broker.published == [MediaUploaded(job_id=job_id)]
    job = jobs.jobs[job_id]
    assert (job.source_url, job.filename, job.size_bytes) == (url, "week 1.mp3", 0)
    assert await asyncio.to_thread(files_in, tmp_path) == []


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"url": (None, "https://me:secret@media.example.com/a.mp3")}, "user name or password"),
        ({"url": (None, "https://token@media.example.com/a.mp3")}, "user name or password"),
        ({"url": (None, "file:///etc/passwd")}, "absolute http or https URL"),
        ({"url": (None, "")}, "absolute http or https URL"),
        (
            {"url": (None, "https://media.example.com/a.mp3"), "file": ("a.wav", b"RIFF")},
            "not both",
        ),
    ],
)
async def test_a_bad_media_url_is_refused_at_once(
    client: httpx.AsyncClient,
    broker: FakeBroker,
    jobs: FakeJobs,
    clips: dict[str, Path],
    tmp_path: Path,
    form: Form,
    message: str,
) -> None:
    if "file" in form:
        form = {**form, "file": ("talk.wav", clips["wav"].read_bytes())}
    response = await client.post("/v1/jobs", files=form)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert (broker.published, jobs.jobs) == ([], {})
    assert await asyncio.to_thread(files_in, tmp_path) == []


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/stt/native"])
async def test_routes_that_answer_with_the_text_take_only_files(
    client: httpx.AsyncClient, jobs: FakeJobs, route: str
) -> None:
    form = {"url": (None, "https://media.example.com/a.mp3"), "model": (None, "whisper-1")}
    response = await client.post(route, files=form)
    assert response.status_code == 400, response.text
    assert "No file" in response.text
    assert jobs.jobs == {}


async def test_a_key_may_have_only_so_many_urls_waiting_to_be_fetched(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs
) -> None:
    form = {"url": (None, "https://media.example.com/slow.mp3")}
    async with gateway(tmp_path, broker, jobs, api_keys=TENANTS, max_fetches_per_key=2) as client:
        answers = [
            await client.post("/v1/jobs", files=form, headers=as_key("b-s3cret")) for _ in range(3)
        ]
        other_key = await client.post("/v1/jobs", files=form, headers=as_key("s-s3cret"))
        assert [answer.status_code for answer in answers] == [202, 202, 429]
        assert "STT_MAX_FETCHES_PER_KEY" in answers[2].json()["detail"]
        assert answers[2].headers["retry-after"]
        assert other_key.status_code == 202
        # Once one has arrived, the key may send another.
        fetched = jobs.jobs[answers[0].json()["job_id"]]
        jobs.add(fetched.model_copy(update={"size_bytes": 2048}))
        again = await client.post("/v1/jobs", files=form, headers=as_key("b-s3cret"))
        assert again.status_code == 202
    assert len(jobs.jobs) == 4


async def test_a_gateway_that_is_shutting_down_is_not_ready(client: httpx.AsyncClient) -> None:
    transport = cast(httpx.ASGITransport, client._transport)
    sessions = transport.app.state.live_sessions  # type: ignore[attr-defined]
    assert (await client.get("/readyz")).status_code == 200
    await sessions.stop_all(within=0.1)
    stopping = await client.get("/readyz")
    assert stopping.status_code == 503
    assert "shutting down" in stopping.json()["detail"]
