"""Job options: one model (shared/jobs/options.py) carried whole from the request to the engine.
An option added there, and read by an engine, reaches that engine through the gateway, the job
store, the transcoder, the recognizer and the interim passes of live sessions with no change to
any of them: followed here in process with an option that makes a trivial engine shout. Job
documents stored before the model existed read back as they were written."""

import contextlib
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import speech_recognition as sr
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from gateway import submit
from gateway.choices import choose_options
from recognizer.engines import LOADERS, EngineConfig, EngineLoader
from recognizer.engines.base import seconds_of
from recognizer.handler import RecognizeHandler
from recognizer.interim import InterimHandler
from recognizer.pool import Loaded, Request, recognize
from shared.engines import ENGINE_SPECS, EngineSpec
from shared.events import AudioReady, Event, InterimReady, InterimRecognized, MediaUploaded
from shared.jobs.documents import to_job
from shared.jobs.options import JobOptions, SpeakerLabels
from shared.media import MediaPaths
from shared.media_store import FolderStore
from shared.provenance import ModelProvenance
from shared.transcripts import Segment, Transcript
from tests.fakes import FakeBroker, FakeJobs, no_fetch
from tests.unit.test_gateway import gateway
from transcoder.handler import TranscodeHandler
from transcoder.settings import TranscoderSettings

SHOUTER = "shouter"
CONFIG = EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=5)
JOB_ID = "0123456789abcdef0123456789abcdef"


class ShoutingEngine:
    """Hears "hello", and shouts it when the job's options ask it to."""

    def __init__(self, _config: EngineConfig) -> None:
        pass

    def transcribe(self, audio: sr.AudioData, options: JobOptions) -> Transcript:
        shout = options.shout  # type: ignore[attr-defined]  # the option this test adds
        text = "HELLO!" if shout else "hello"
        heard = Segment(start=0.0, end=seconds_of(audio), text=text)
        return Transcript(text=text, language=options.language, segments=[heard])


def describe_shouter(_config: EngineConfig) -> ModelProvenance:
    return ModelProvenance(engine=SHOUTER, model="shouter 1")


def _inheriting(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    for child in model.__subclasses__():
        yield child
        yield from _inheriting(child)


@pytest.fixture
def with_a_shout_option(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`shout: bool = False` added to JobOptions, as if written in its class: in the models that
    inherit its fields (the job, its public shape) and the events that carry it, rebuilt as
    they are at import. And the engine that reads it."""
    inheriting: list[type[BaseModel]] = [JobOptions, *_inheriting(JobOptions)]
    shout = FieldInfo(annotation=bool, default=False)
    for model in inheriting:
        monkeypatch.setitem(model.model_fields, "shout", shout)
    holding: list[type[BaseModel]] = [*inheriting, InterimReady]
    for model in holding:
        model.model_rebuild(force=True)
    spec = EngineSpec(SHOUTER, "shouter 1", "Shouter: says hello", frozenset({"en"}))
    monkeypatch.setitem(ENGINE_SPECS, SHOUTER, spec)
    monkeypatch.setitem(LOADERS, SHOUTER, EngineLoader(ShoutingEngine, describe_shouter))
    yield
    monkeypatch.undo()
    for model in holding:
        model.model_rebuild(force=True)


class InProcessSlots:
    """The recognizer's slot pool with its one slot in this process, where the engine and the
    option added by the test exist (a real slot is a process of its own, started afresh)."""

    busy = 0

    def __init__(self) -> None:
        self.loaded = Loaded(
            {SHOUTER: LOADERS[SHOUTER].load(CONFIG)},
            {SHOUTER: LOADERS[SHOUTER].describe(CONFIG)},
            CONFIG,
        )

    @contextlib.asynccontextmanager
    async def reserve(self) -> AsyncIterator["InProcessSlots"]:
        yield self

    async def transcribe(self, request: Request, _timeout: float) -> Any:
        return recognize(self.loaded, request)


class Published(list[Event]):
    async def __call__(self, event: Event) -> None:
        self.append(event)


class NoProblems:
    worker = "test-host:1"

    async def media_missing(self, why: str) -> None:
        raise AssertionError(why)

    def fine(self) -> None:
        return None


@pytest.mark.usefixtures("with_a_shout_option")
async def test_an_option_added_in_its_one_place_reaches_the_engine(
    tmp_path: Path, clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def asking_to_shout(*given: Any, **asked: Any) -> JobOptions:
        # What clients send for an option is read where the choices are made; here the test
        # sets it, as such a line would.
        return choose_options(*given, **asked).model_copy(update={"shout": True})

    monkeypatch.setattr(submit, "choose_options", asking_to_shout)
    broker, jobs = FakeBroker(), FakeJobs()
    async with gateway(tmp_path, broker, jobs, engines=(SHOUTER,)) as client:
        speech = {"file": ("talk.wav", clips["wav"].read_bytes())}
        accepted = await client.post("/v1/jobs", files=speech, data={"engine": SHOUTER})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        # The job store keeps its options flat in the job document, and reads them back.
        created = await jobs.get(job_id)
        assert created is not None
        document = {"_id": job_id, **created.model_dump(exclude={"job_id"})}
        assert document["shout"] is True
        jobs.add(to_job(document))

        store = FolderStore(MediaPaths(tmp_path))
        to_recognize = Published()
        settings = TranscoderSettings(media_dir=tmp_path)
        with ThreadPoolExecutor(1) as executor:
            transcode = TranscodeHandler(jobs, store, executor, to_recognize, settings, no_fetch)  # type: ignore[arg-type]
            await transcode(MediaUploaded(job_id=job_id))
        [ready] = to_recognize
        assert isinstance(ready, AudioReady)
        recognize_piece = RecognizeHandler(
            jobs,  # type: ignore[arg-type]
            store,
            InProcessSlots(),  # type: ignore[arg-type]
            Published(),
            60,
            NoProblems(),  # type: ignore[arg-type]
        )
        await recognize_piece(ready)
        done = (await client.get(f"/v1/jobs/{job_id}")).json()
    assert (done["status"], done["text"], done["shout"]) == ("done", "HELLO!", True)


@pytest.mark.usefixtures("with_a_shout_option")
async def test_an_option_added_in_its_one_place_reaches_the_engine_of_an_interim_pass() -> None:
    options = JobOptions.model_validate({"engine": SHOUTER, "language": "en", "shout": True})
    sent = InterimReady(
        job_id=JOB_ID,
        options=options,
        utterance_index=0,
        pass_number=0,
        sent_at=datetime.now(UTC).timestamp(),
        audio="AAAAAAAAAAAAAAAA",
    )
    published = Published()
    handler = InterimHandler(InProcessSlots(), published)  # type: ignore[arg-type]
    await handler(InterimReady.model_validate_json(sent.model_dump_json()))
    [recognized] = published
    assert isinstance(recognized, InterimRecognized)
    assert recognized.text == "HELLO!"


def test_a_job_document_in_the_shape_stored_before_job_options_reads_back_the_same() -> None:
    created = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
    document: dict[str, Any] = {
        "_id": JOB_ID,
        "list_key": "1795684500000-0123456789abcdef0123456789abcdef",
        "status": "queued",
        "owner": "billing",
        "held": False,
        "filename": "call.mp3",
        "source_url": None,
        "size_bytes": 48213,
        "content_type": "audio/mpeg",
        "language": "de",
        "engine": "whisper-base",
        "prompt": None,
        "temperature": None,
        "task": "translate",
        "hotwords": ["Zarvokian", "Quillmore"],
        "speaker_labels": {"speakers": None, "min_speakers": 2, "max_speakers": None, "names": []},
        "callback": None,
        "created_at": created,
        "updated_at": created,
        "stage_times": {"queued": created},
        "deadline_at": created,
    }
    job = to_job(document)
    assert job.options == JobOptions(
        engine="whisper-base",
        language="de",
        task="translate",
        hotwords=["Zarvokian", "Quillmore"],
        speaker_labels=SpeakerLabels(min_speakers=2),
    )
    assert {name: job.model_dump()[name] for name in JobOptions.model_fields} == {
        name: document[name] for name in JobOptions.model_fields
    }
    # Written before tasks, hotwords and speaker labels existed: those keep their defaults.
    older = {
        name: value
        for name, value in document.items()
        if name not in ("task", "hotwords", "speaker_labels")
    }
    assert to_job(older).options == JobOptions(engine="whisper-base", language="de")


def test_an_interim_pass_from_a_gateway_older_than_job_options_is_read() -> None:
    older = {
        "job_id": JOB_ID,
        "engine": "faster-whisper",
        "language": "en",
        "prompt": "A call about invoices.",
        "utterance_index": 2,
        "pass_number": 5,
        "sent_at": 1795684500.0,
        "audio": "AAAA",
    }
    event = InterimReady.model_validate(older)
    assert event.options == JobOptions(
        engine="faster-whisper", language="en", prompt="A call about invoices."
    )
    assert event.topic == "live.interim.faster-whisper"
    # And one sent now keeps the fields a recognizer older than job options reads.
    sent = InterimReady(
        job_id=JOB_ID,
        options=event.options,
        utterance_index=2,
        pass_number=5,
        sent_at=1795684500.0,
        audio="AAAA",
    ).model_dump()
    assert {name: sent[name] for name in older} == older
