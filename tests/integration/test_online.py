"""An online engine through the whole pipeline, against a stand-in of the provider on loopback:
a provider that is away is waited for, one that refuses the request fails the job at once."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.api import submit
from tests.integration.conftest import RunningSystem, launched
from tests.stand_in import StandIn, http_stand_in

TEXT = " Please send the quarterly report. "
# Each recognition attempt: the provider's SDK asks once and retries twice on its own.
SDK_ATTEMPTS = 3
RETRY_DELAYS = (0.3, 0.6)


@pytest.fixture(scope="module")
async def online(
    mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[RunningSystem, StandIn]]:
    with http_stand_in({"text": TEXT}) as stand_in, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_API_KEY", "sk-test")
        env.setenv("OPENAI_BASE_URL", stand_in.url + "/v1")
        async with launched(
            tmp_path_factory.mktemp("online"),
            mongodb_url,
            engines=("openai",),
            default_engine="openai",
            recognizer_slots=1,
            retry_delays_seconds=RETRY_DELAYS,
        ) as running:
            yield running, stand_in


async def test_a_provider_that_is_away_is_retried_until_it_answers(
    online: tuple[RunningSystem, StandIn], clips: dict[str, Path]
) -> None:
    system, stand_in = online
    stand_in.received.clear()
    stand_in.failures[:] = [503] * SDK_ATTEMPTS + [429] * SDK_ATTEMPTS
    async with system.client() as client:
        job = await submit(client, clips["wav"])
    assert job["status"] == "done", job
    assert job["text"] == TEXT.strip()
    assert len(stand_in.received) == 2 * SDK_ATTEMPTS + 1


async def test_a_provider_that_refuses_the_request_fails_the_job_at_once(
    online: tuple[RunningSystem, StandIn], clips: dict[str, Path]
) -> None:
    system, stand_in = online
    stand_in.received.clear()
    stand_in.failures[:] = [401]
    async with system.client() as client:
        job = await submit(client, clips["wav"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "recognition_failed"
    assert "OpenAI failed" in job["error"]["message"]
    assert "401" in job["error"]["message"]
    assert len(stand_in.received) == 1


async def test_a_provider_away_through_every_retry_fails_the_job_as_retries_exhausted(
    online: tuple[RunningSystem, StandIn], clips: dict[str, Path]
) -> None:
    system, stand_in = online
    stand_in.received.clear()
    attempts = 1 + len(RETRY_DELAYS)
    stand_in.failures[:] = [503] * SDK_ATTEMPTS * attempts
    async with system.client() as client:
        job = await submit(client, clips["wav"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "retries_exhausted"
    assert "online speech engine" in job["error"]["message"]
    assert len(stand_in.received) == SDK_ATTEMPTS * attempts
