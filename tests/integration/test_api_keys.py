"""API keys: with STT_API_KEYS set, every route but health and the docs needs a bearer token."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest

from tests import media
from tests.integration.api import accepted_job_id, until_status, upload
from tests.integration.conftest import RunningSystem, launched

KEYS = ("first-key", "second-key")


@pytest.fixture(scope="module")
async def system(
    mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningSystem]:
    async with launched(
        tmp_path_factory.mktemp("keys"), mongodb_url, api_keys=",".join(KEYS), recognizer_slots=1
    ) as running:
        yield running


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
