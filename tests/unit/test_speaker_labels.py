"""Speaker labels at the gateway, in process: what an upload may ask, what is refused at once
(never a job that fails later), known speakers' clips converted and kept, the capability in
/v1/models, and the formats a labelled transcript comes out in."""

import base64
import io
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import srt
import webvtt

from gateway.app import create_app
from gateway.backlog import Backlog
from gateway.openai_formats import render
from gateway.services import Services
from gateway.settings import GatewaySettings
from shared.jobs.models import JobStatus
from shared.media import MediaPaths
from shared.media_store import FolderStore
from shared.transcripts import Segment, Word, to_srt, to_turns, to_vtt
from tests import media
from tests.fakes import FakeBroker, FakeFleet, FakeJobs, a_job
from tests.unit import test_gateway
from tests.unit.test_gateway import Form

OPENAI_ROUTE = "/v1/audio/transcriptions"


# The gateway tests' stand-ins and upload form.
broker = test_gateway.broker
jobs = test_gateway.jobs
speech = test_gateway.speech


def gateway(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs, fleet: FakeFleet
) -> httpx.AsyncClient:
    settings = GatewaySettings(
        media_dir=tmp_path, max_upload_bytes=8 * 1024 * 1024, engines=("faster-whisper", "google")
    )
    fakes: Any = (broker, jobs, fleet)
    services = Services(
        settings, fakes[0], fakes[1], FolderStore(MediaPaths(tmp_path)), cast(Any, None), fakes[2],
        Backlog(*fakes),
    )  # fmt: skip
    app = create_app(settings, services)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


@pytest.fixture
async def labelling(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose fleet has a recognizer labelling speakers for faster-whisper."""
    async with gateway(
        tmp_path, broker, jobs, FakeFleet(speaker_labels_served={"faster-whisper"})
    ) as client:
        yield client


@pytest.fixture
async def unlabelling(
    tmp_path: Path, broker: FakeBroker, jobs: FakeJobs
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose recognizers serve faster-whisper without the speaker model."""
    async with gateway(tmp_path, broker, jobs, FakeFleet()) as client:
        yield client


def data_url(path: Path, kind: str = "audio/wav") -> str:
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


async def post(
    client: httpx.AsyncClient, speech: Form, fields: dict[str, Any], route: str = "/v1/jobs"
) -> httpx.Response:
    return await client.post(route, files=speech, data=fields)


async def test_a_job_asking_for_labels_carries_what_it_asked(
    labelling: httpx.AsyncClient, jobs: FakeJobs, speech: Form
) -> None:
    response = await post(labelling, speech, {"diarize": "true", "speakers": "2"})
    assert response.status_code == 202, response.text
    job = jobs.jobs[response.json()["job_id"]]
    assert job.speaker_labels is not None
    assert (job.speaker_labels.speakers, job.speaker_labels.names) == (2, [])


async def test_a_job_without_diarize_labels_nothing(
    labelling: httpx.AsyncClient, jobs: FakeJobs, speech: Form
) -> None:
    response = await post(labelling, speech, {"diarize": "false"})
    assert response.status_code == 202, response.text
    assert jobs.jobs[response.json()["job_id"]].speaker_labels is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"diarize": "true", "engine": "google"}, "does not time what it hears"),
        ({"diarize": "maybe"}, "diarize must be true or false"),
        ({"diarize": "true", "speakers": "0"}, "speakers must be a whole number from 1 to 20"),
        ({"diarize": "true", "speakers": "21"}, "speakers must be a whole number from 1 to 20"),
        ({"diarize": "true", "max_speakers": "two"}, "max_speakers must be a whole number"),
        ({"diarize": "true", "min_speakers": "4", "max_speakers": "2"}, "min_speakers is more"),
        ({"diarize": "true", "speakers": "2", "max_speakers": "3"}, "not both"),
        ({"diarize": "false", "speakers": "2"}, "contradicts"),
        ({"diarize": "true", "speaker_names[]": "Ann"}, "1 name(s) came with 0 clip(s)"),
        (
            {"diarize": "true", "speaker_names[]": "S2", "speaker_references[]": "data:,x"},
            "looks like the labels given to unknown speakers",
        ),
        (
            {"diarize": "true", "speaker_names[]": "Ann", "speaker_references[]": "ann.wav"},
            "must be a data URL of audio",
        ),
        (
            {
                "diarize": "true",
                "speaker_names[]": "Ann",
                "speaker_references[]": "data:audio/wav;base64,UklGR!!",
            },
            "base64 is malformed",
        ),
    ],
)
async def test_labels_that_cannot_be_given_are_refused_at_upload(
    labelling: httpx.AsyncClient,
    broker: FakeBroker,
    jobs: FakeJobs,
    speech: Form,
    fields: dict[str, str],
    message: str,
) -> None:
    response = await post(labelling, speech, fields)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert (broker.published, jobs.jobs) == ([], {})


async def test_labels_are_refused_where_no_recognizer_has_the_speaker_model(
    unlabelling: httpx.AsyncClient, jobs: FakeJobs, speech: Form
) -> None:
    response = await post(unlabelling, speech, {"diarize": "true"})
    assert response.status_code == 422, response.text
    assert "No recognizer labels speakers" in response.json()["detail"]
    assert jobs.jobs == {}
    plain = await post(unlabelling, speech, {})
    assert plain.status_code == 202, plain.text


async def test_a_known_speakers_clip_is_kept_as_16_khz_mono_pcm(
    labelling: httpx.AsyncClient, jobs: FakeJobs, speech: Form, clips: dict[str, Path]
) -> None:
    seconds = _seconds(clips["wav"])
    response = await post(
        labelling,
        speech,
        {
            "diarize": "true",
            "speaker_names[]": ["Ann"],
            "speaker_references[]": [data_url(clips["mp3"])],
        },
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    [reference] = jobs.references[job_id]
    assert reference.name == "Ann"
    # Two bytes a sample, 16,000 samples a second, whatever the clip was sent as (here MP3).
    assert len(reference.pcm) / 32_000 == pytest.approx(seconds, abs=0.1)
    assert jobs.jobs[job_id].speaker_labels.names == ["Ann"]  # type: ignore[union-attr]


def _seconds(wav: Path) -> float:
    with wave.open(str(wav), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


async def test_a_clip_too_short_not_audio_or_a_file_list_is_refused(
    labelling: httpx.AsyncClient, jobs: FakeJobs, speech: Form, tmp_path: Path
) -> None:
    short = media.silence(tmp_path / "short.wav", 1)
    for clip, message in (
        (data_url(short), "lasts 1.0 s"),
        ("data:audio/wav;base64," + base64.b64encode(b"not audio at all").decode(), "not audio"),
        (
            "data:audio/wav;base64,"
            + base64.b64encode(b"ffconcat version 1.0\n# \x01\nfile /etc/hostname\n").decode(),
            "format this service does not read (concat)",
        ),
    ):
        response = await post(
            labelling,
            speech,
            {"diarize": "true", "speaker_names[]": "Ann", "speaker_references[]": clip},
        )
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]
    assert jobs.jobs == {}


async def test_a_clip_over_its_size_limit_is_refused_before_it_is_read_whole(
    labelling: httpx.AsyncClient, speech: Form
) -> None:
    huge = "data:audio/wav;base64," + "A" * (5 * 1024 * 1024)
    response = await post(
        labelling, speech, {"speaker_names[]": "Ann", "speaker_references[]": huge}
    )
    assert response.status_code == 413, response.text
    assert "speaker_references[]" in response.json()["detail"]


async def test_the_openai_route_refuses_diarized_json_in_its_own_shape(
    unlabelling: httpx.AsyncClient, speech: Form
) -> None:
    diarized = {"model": "whisper-1", "response_format": "diarized_json"}
    response = await post(unlabelling, speech, diarized, OPENAI_ROUTE)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("response_format", "unsupported_diarization")
    assert "No recognizer labels speakers" in error["message"]
    known = {"known_speaker_names[]": ["Ann", "Bob"], "known_speaker_references[]": "data:,x"}
    names = await post(unlabelling, speech, {**diarized, **known}, OPENAI_ROUTE)
    assert names.json()["error"]["param"] == "known_speaker_names"


async def test_models_say_which_engines_label_speakers(
    labelling: httpx.AsyncClient, unlabelling: httpx.AsyncClient
) -> None:
    offered = (await labelling.get("/v1/models")).json()["data"]
    assert {model["id"]: model["labels_speakers"] for model in offered} == {
        "faster-whisper": True,
        "google": False,
    }
    plain = (await unlabelling.get("/v1/models")).json()["data"]
    assert plain
    assert not any(model["labels_speakers"] for model in plain)


LABELLED = [
    Segment(
        start=0.0,
        end=1.5,
        text="Hello there.",
        speaker="S1",
        words=[Word(start=0.0, end=0.6, word="Hello", speaker="S1")],
    ),
    Segment(start=1.5, end=3.0, text="How are you?", speaker="S1"),
    Segment(start=3.2, end=4.0, text="Fine, <thanks> & you?", speaker="Ann"),
    Segment(start=4.1, end=5.0, text="Good.", speaker="S1"),
]


def test_srt_cues_start_with_their_speaker() -> None:
    cues = list(srt.parse(to_srt(LABELLED)))
    assert [cue.content for cue in cues] == [
        "S1: Hello there.",
        "S1: How are you?",
        "Ann: Fine, <thanks> & you?",
        "S1: Good.",
    ]


def test_webvtt_cues_carry_voice_tags() -> None:
    captions = webvtt.from_string(to_vtt(LABELLED)).captions
    assert [caption.voice for caption in captions] == ["S1", "S1", "Ann", "S1"]
    assert captions[2].raw_text == "<v Ann>Fine, &lt;thanks&gt; &amp; you?</v>"
    unlabelled = [segment.model_copy(update={"speaker": None}) for segment in LABELLED]
    assert "<v" not in to_vtt(unlabelled)


def test_text_goes_by_turns() -> None:
    assert to_turns(LABELLED) == (
        "S1: Hello there. How are you?\n\nAnn: Fine, <thanks> & you?\n\nS1: Good."
    )


async def test_a_labelled_transcript_in_each_format(
    labelling: httpx.AsyncClient, jobs: FakeJobs
) -> None:
    talk = [{"speaker": "S1", "talk_seconds": 3.6, "segments": 3}]
    talk.append({"speaker": "Ann", "talk_seconds": 0.8, "segments": 1})
    jobs.add(
        a_job(
            "a" * 32,
            JobStatus.DONE,
            text=" ".join(segment.text for segment in LABELLED),
            segments=LABELLED,
            speakers=talk,
        )
    )
    transcript = "/v1/jobs/" + "a" * 32 + "/transcript"
    text = (await labelling.get(transcript)).text
    assert text.startswith("S1: Hello there. How are you?\n\nAnn: ")
    body = (await labelling.get(transcript, params={"format": "json"})).json()
    assert body["speakers"] == talk
    assert [segment["speaker"] for segment in body["segments"]] == ["S1", "S1", "Ann", "S1"]
    assert body["segments"][0]["words"][0]["speaker"] == "S1"
    vtt = (await labelling.get(transcript, params={"format": "vtt"})).text
    assert webvtt.from_buffer(io.StringIO(vtt)).captions[2].voice == "Ann"


def test_diarized_json_is_shaped_as_openais() -> None:
    job = a_job("b" * 32, JobStatus.DONE, text="Hello there.", segments=LABELLED[:1])
    body = json.loads(bytes(render(job, "diarized_json", []).body))
    assert body["text"] == "Hello there."
    assert body["segments"] == [
        {
            "type": "transcript.text.segment",
            "id": "seg_0",
            "start": 0.0,
            "end": 1.5,
            "text": "Hello there.",
            "speaker": "S1",
        }
    ]
