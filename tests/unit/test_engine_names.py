"""Engines that say what they are: the model behind each id in `/v1/models`, which one is fast
and which accurate, and the models' names taken as `model` by the OpenAI routes."""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.engines import engine_named, spec_of
from tests.fakes import FakeBroker, FakeJobs
from tests.unit.test_gateway import Form, gateway


class NeverFinished:
    """The OpenAI routes' wait, cut short: the job is left to be polled (504)."""

    async def wait_until_finished(self, _job_id: str, _seconds: float) -> None:
        return None


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


async def client_with(
    tmp_path: Path, jobs: FakeJobs, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(tmp_path, FakeBroker(), jobs, NeverFinished(), **settings) as client:
        yield client


@pytest.fixture
async def client(tmp_path: Path, jobs: FakeJobs) -> AsyncIterator[httpx.AsyncClient]:
    async for each in client_with(tmp_path, jobs):
        yield each


async def test_each_engine_names_its_model_and_what_it_is_good_at(
    client: httpx.AsyncClient,
) -> None:
    listed = {model["id"]: model for model in (await client.get("/v1/models")).json()["data"]}
    tiny, base, sphinx = listed["faster-whisper"], listed["whisper-base"], listed["sphinx"]
    assert (tiny["model"], base["model"]) == ("tiny.en", "base")
    assert "fast" in tiny["description"]
    assert "accurate" not in tiny["description"]
    assert "accurate" in base["description"]
    assert "fast" not in base["description"]
    assert "Sphinx" in sphinx["description"]
    assert (tiny["aliases"], base["aliases"]) == (["whisper-tiny.en"], [])


async def test_the_model_shown_follows_stt_whisper_model(tmp_path: Path, jobs: FakeJobs) -> None:
    async for client in client_with(tmp_path, jobs, whisper_model="/models/small/"):
        listed = {model["id"]: model for model in (await client.get("/v1/models")).json()["data"]}
        assert listed["faster-whisper"]["model"] == "small"
        assert listed["faster-whisper"]["aliases"] == ["whisper-small"]
        assert "fast one" not in listed["faster-whisper"]["description"]


@pytest.mark.parametrize(
    ("model", "engine"),
    [("whisper-tiny.en", "faster-whisper"), ("whisper-base", "whisper-base")],
)
async def test_the_openai_routes_take_the_models_names(
    client: httpx.AsyncClient, jobs: FakeJobs, clips: dict[str, Path], model: str, engine: str
) -> None:
    form: Form = {"file": ("talk.wav", clips["wav"].read_bytes()), "model": (None, model)}
    response = await client.post("/v1/audio/transcriptions", files=form)
    assert response.status_code == 504, response.text  # accepted; left to be polled
    job_id = re.findall(r"[0-9a-f]{32}", response.json()["error"]["message"])[0]
    assert jobs.jobs[job_id].engine == engine


async def test_an_alias_of_an_engine_that_cannot_translate_is_refused_as_the_engine(
    client: httpx.AsyncClient, clips: dict[str, Path]
) -> None:
    form: Form = {
        "file": ("talk.wav", clips["wav"].read_bytes()),
        "model": (None, "whisper-tiny.en"),
    }
    response = await client.post("/v1/audio/translations", files=form)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "unsupported_task"


def test_engine_ids_stay_engine_ids() -> None:
    assert engine_named("faster-whisper", "tiny.en") == "faster-whisper"
    assert engine_named("whisper-1", "tiny.en") == "whisper-1"  # the routes' own default
    assert spec_of("faster-whisper", "tiny.en").model == "tiny.en"  # type: ignore[union-attr]
