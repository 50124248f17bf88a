"""An engine is added in its two places, a spec (shared/engines.py) and a loader
(recognizer/engines/), and from there the gateway offers it, checks jobs against it and lists it
in /v1/models, and a slot loads it, recognizes with it and records where it came from: followed
here in process with a trivial engine that answers "echo" to any audio."""

from pathlib import Path

import pytest
import speech_recognition as sr

from recognizer.engines import LOADERS, EngineConfig, EngineLoader, describe_model
from recognizer.engines.base import seconds_of
from recognizer.pool import Loaded, Request, recognize
from shared.engines import ENGINE_SPECS, EngineSpec
from shared.jobs.options import JobOptions
from shared.provenance import ModelProvenance
from shared.transcripts import Segment, Transcript
from tests.fakes import FakeBroker, FakeJobs
from tests.unit.test_gateway import gateway

ECHO = "echo"
CONFIG = EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=5)


class EchoEngine:
    def __init__(self, _config: EngineConfig) -> None:
        pass

    def transcribe(self, audio: sr.AudioData, options: JobOptions) -> Transcript:
        heard = Segment(start=0.0, end=seconds_of(audio), text="echo")
        return Transcript(text="echo", language=options.language, segments=[heard])


def describe_echo(_config: EngineConfig) -> ModelProvenance:
    return ModelProvenance(engine=ECHO, model="echo 1")


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = EngineSpec(ECHO, "echo 1", "Echo: says 'echo' to anything", frozenset({"en"}))
    monkeypatch.setitem(ENGINE_SPECS, ECHO, spec)
    monkeypatch.setitem(LOADERS, ECHO, EngineLoader(EchoEngine, describe_echo))
    return


@pytest.mark.usefixtures("echo")
async def test_the_gateway_offers_lists_and_checks_a_new_engine(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    speech = {"file": ("talk.wav", clips["wav"].read_bytes())}
    async with gateway(
        tmp_path, FakeBroker(), FakeJobs(), engines=("faster-whisper", ECHO)
    ) as client:
        listed = (await client.get("/v1/models")).json()["data"]
        accepted = await client.post(
            "/v1/jobs", files={**speech, "engine": (None, ECHO), "language": (None, "en")}
        )
        german = await client.post(
            "/v1/jobs", files={**speech, "engine": (None, ECHO), "language": (None, "de")}
        )
        translated = await client.post(
            "/v1/jobs", files={**speech, "engine": (None, ECHO), "task": (None, "translate")}
        )
    [model] = [entry for entry in listed if entry["id"] == ECHO]
    assert (model["model"], model["languages"], model["tasks"]) == (
        "echo 1",
        ["en"],
        ["transcribe"],
    )
    assert accepted.status_code == 202, accepted.text
    assert german.status_code == 422
    assert "'echo' does not transcribe language 'de'" in german.json()["detail"]
    assert translated.status_code == 422
    assert "'echo' cannot translate" in translated.json()["detail"]


@pytest.mark.usefixtures("echo")
def test_a_slot_loads_a_new_engine_recognizes_with_it_and_says_what_it_was(
    clips: dict[str, Path],
) -> None:
    loaded = Loaded(
        {ECHO: LOADERS[ECHO].load(CONFIG)}, {ECHO: describe_model(ECHO, CONFIG)}, CONFIG
    )
    asked = JobOptions(engine=ECHO, language="en", prompt="ignored")
    transcript = recognize(loaded, Request(clips["wav"], asked))
    assert isinstance(transcript, Transcript)
    assert transcript.text == "echo"
    assert transcript.provenance is not None
    assert (transcript.provenance.engine, transcript.provenance.model) == (ECHO, "echo 1")
    # Not a Whisper engine: no Whisper settings or prompt are recorded as if they had been used.
    assert transcript.provenance.decoding.beam_size is None
    assert transcript.provenance.decoding.prompt is None
