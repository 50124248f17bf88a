"""API keys: with STT_API_KEYS set, every route but health and the docs needs a bearer token,
and each key sees only its own jobs (an admin key sees all)."""

from pathlib import Path

import httpx
import openai
import pytest

from tests import media
from tests.integration.api import accepted_job_id, until_status, upload
from tests.integration.conftest import ONLY_WHISPER, RunningSystem, stack_fixture
from tests.routes import job_operations

KEYS = ("first-key", "second-key")
ADMIN_KEY = "ops-key"
# The first key is named; the second is a bare secret, named after a hash of it.
CONFIGURED_KEYS = f"first:{KEYS[0]},{KEYS[1]}"
PER_KEY_BACKLOG_SECONDS = 60


system = stack_fixture(
    "keys",
    api_keys=CONFIGURED_KEYS,
    admin_keys=ADMIN_KEY,
    max_backlog_seconds_per_key=PER_KEY_BACKLOG_SECONDS,
    fair_share_per_key=1,
    engines=ONLY_WHISPER,
    recognizer_slots=1,
)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", "Bearer", f"Basic {KEYS[0]}", f"Bearer {KEYS[0]}x"],
)
async def test_requests_without_a_known_key_get_401(
    system: RunningSystem, clips: dict[str, Path], authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=system.base_url, headers=headers) as client:
        refused_upload = await upload(client, clips["wav"])
        refused_read = await client.get(f"/v1/jobs/{'0' * 32}")
    for refused in (refused_upload, refused_read):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "API key" in refused.json()["detail"]


async def test_each_configured_key_opens_the_api(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    for key in KEYS:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=system.base_url, headers=headers) as client:
            job = await until_status(client, await accepted_job_id(client, clips["wav"]))
        assert job["status"] == "done"
        assert set(media.EXPECTED_WORDS) <= media.words_of(job["text"])


async def test_health_and_docs_stay_open(system: RunningSystem) -> None:
    async with httpx.AsyncClient(base_url=system.base_url) as client:
        for route in ("/healthz", "/readyz", "/docs"):
            assert (await client.get(route)).status_code == 200, route
        schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/jobs"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]


async def test_the_openai_client_sends_its_api_key(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    base_url = f"{system.base_url}/v1"
    async with openai.AsyncOpenAI(base_url=base_url, api_key=KEYS[1], max_retries=0) as client:
        with clips["mp3"].open("rb") as file:
            result = await client.audio.transcriptions.create(model="whisper-1", file=file)
    assert set(media.EXPECTED_WORDS) <= media.words_of(result.text)
    async with openai.AsyncOpenAI(base_url=base_url, api_key="wrong", max_retries=0) as client:
        with clips["mp3"].open("rb") as file, pytest.raises(openai.AuthenticationError) as refused:
            await client.audio.transcriptions.create(model="whisper-1", file=file)
    assert refused.value.code == "invalid_api_key"


def as_key(system: RunningSystem, key: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.AsyncClient(base_url=system.base_url, headers=headers, timeout=30)


async def test_another_keys_job_is_unknown_on_every_route_but_an_admin_sees_both(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    async with as_key(system, KEYS[0]) as first:
        job = await until_status(first, await accepted_job_id(first, clips["wav"]))
        own_list = (await first.get("/v1/jobs")).json()["jobs"]
    job_id = job["job_id"]
    async with as_key(system, KEYS[1]) as second:
        second_job = await accepted_job_id(second, clips["wav"])
        foreign = [
            await second.request(method, path.format(job_id=job_id))
            for method, path in job_operations()
        ]
        second_list = [
            summary["job_id"] for summary in (await second.get("/v1/jobs")).json()["jobs"]
        ]
    async with as_key(system, ADMIN_KEY) as admin:
        seen = (await admin.get(f"/v1/jobs/{job_id}")).json()
        everyone = [summary["job_id"] for summary in (await admin.get("/v1/jobs")).json()["jobs"]]
        firsts = (await admin.get("/v1/jobs", params={"owner": "first"})).json()["jobs"]
    assert [answer.status_code for answer in foreign] == [404] * len(foreign)
    assert job["owner"] == "first"
    assert job_id in [summary["job_id"] for summary in own_list]
    assert job_id not in second_list
    assert second_job in second_list
    assert seen["text"] == job["text"]
    assert {job_id, second_job} <= set(everyone)
    assert {summary["owner"] for summary in firsts} == {"first"}


async def test_the_same_idempotency_key_from_two_keys_makes_two_jobs(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    made = []
    for key in (KEYS[0], KEYS[1], KEYS[0]):
        async with as_key(system, key) as client:
            with clips["wav"].open("rb") as file:
                answer = await client.post(
                    "/v1/jobs", files={"file": file}, headers={"Idempotency-Key": "invoice-42"}
                )
            assert answer.status_code == 202, answer.text
            made.append(answer.json()["job_id"])
    assert made[0] == made[2] != made[1]


async def test_a_busy_key_gets_429_while_another_keys_uploads_are_accepted(
    system: RunningSystem, long_speech: Path
) -> None:
    """About 40 s of speech each: a key's second one passes its 60 s while the first waits."""
    async with as_key(system, KEYS[0]) as first, as_key(system, KEYS[1]) as second:
        accepted = await upload(first, long_speech)
        refused = await upload(first, long_speech)
        other = await upload(second, long_speech)
        for answer in (accepted, other):
            await until_status(first if answer is accepted else second, answer.json()["job_id"])
    assert accepted.status_code == 202, accepted.text
    assert refused.status_code == 429, refused.text
    assert refused.headers["retry-after"]
    assert "STT_MAX_BACKLOG_SECONDS_PER_KEY" in refused.json()["detail"]
    assert other.status_code == 202, other.text


async def test_with_a_fair_share_another_keys_first_job_passes_a_busy_keys_backlog(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    """A share of one and one slot: the second key's job goes in beside the first key's first
    job (the transcoder may finish either first), not behind all three."""
    async with as_key(system, KEYS[0]) as first, as_key(system, KEYS[1]) as second:
        busy = [await accepted_job_id(first, clips["wav"]) for _ in range(3)]
        held = [(await first.get(f"/v1/jobs/{job_id}")).json()["held"] for job_id in busy]
        other = await accepted_job_id(second, clips["wav"])
        busy_jobs = [await until_status(first, job_id) for job_id in busy]
        other_job = await until_status(second, other)

    def finished(job: dict[str, object]) -> str:
        times = job["stage_times"]
        assert isinstance(times, dict)
        return str(times["done"])

    assert held == [False, True, True]
    assert [job["status"] for job in [*busy_jobs, other_job]] == ["done"] * 4
    assert finished(other_job) < finished(busy_jobs[1]) < finished(busy_jobs[2])
