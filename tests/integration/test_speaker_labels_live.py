"""Speaker labels through the real stack, on real voices: a recorded two-person phone call (the
`pyannote-audio` wheel's sample, with its reference turns), cut into 10 s pieces that two
recognizers of one slot each share. Labels must hold across pieces and recognizers, a count
must be obeyed, a known speaker named, and every format must carry the labels; a deployment
whose recognizers cannot label refuses at upload."""

import asyncio
import base64
import io
import itertools
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
import srt
import webvtt
from openai.types.audio import TranscriptionDiarized
from playwright.async_api import Page, expect
from pymongo import AsyncMongoClient

from recognizer.engines import EngineConfig, load_engines, read_audio
from recognizer.speaker_processes import FindVoices, LabelSpeakers, answer
from shared.jobs.options import JobOptions, SpeakerLabels
from shared.jobs.store import JobStore
from shared.transcripts import Transcript
from tests import voices
from tests.integration import test_page
from tests.integration.api import accepted_job_id, follow, until_status
from tests.integration.conftest import RunningSystem, launched
from tests.integration.test_page import SCREENSHOTS, only_the_service

# Two recognizers loading the speaker model (torch) start slower than the default 120 s allow on
# a busy 2-core machine; the first test of the module pays for the stack and the labelled job.
pytestmark = pytest.mark.timeout(300)

PIECE_SECONDS = 10
# The page test's Chromium, and a fresh page of it for each test.
browser = test_page.browser
page = test_page.page
# The call's second voice alone (its reference turn from 21.78 s), as a known speaker's clip.
SHEILA = (21.8, 27.5)


@pytest.fixture(scope="session")
def call(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float, str]]]:
    """The call as a WAV file and its reference turns: (start, end, speaker)."""
    recording = voices.call()
    folder = tmp_path_factory.mktemp("call")
    audio = voices.write_wav(recording.samples, folder / "pyannote-sample.wav")
    return audio, [(turn.start, turn.end, turn.speaker) for turn in recording.turns]


def clip_of(audio: Path, seconds: tuple[float, float], target: Path) -> Path:
    start, end = seconds
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(audio),
         "-ss", str(start), "-to", str(end), str(target)],
        check=True,
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
async def pair(
    mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningSystem]:
    """Two recognizers of one slot each, with the speaker model; 10 s pieces; no janitor, so
    the pieces stay in the database to be looked at."""
    services = ("gateway", "transcoder", "recognizer", "recognizer")
    async with launched(
        tmp_path_factory.mktemp("speakers"),
        mongodb_url,
        services=services,
        piece_seconds=PIECE_SECONDS,
        recognizer_slots=1,
        engines=("faster-whisper",),
        events_keepalive_seconds=1,
        speaker_labels=True,
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def labelled(
    pair: RunningSystem, call: tuple[Path, list[tuple[float, float, str]]]
) -> dict[str, Any]:
    """The call, labelled with `speakers=2`, as the job and its event stream show it."""
    audio, _ = call
    async with pair.client() as client:
        job_id = await accepted_job_id(client, audio, diarize="true", speakers="2")
        events = await follow(client, job_id, within=110)
        job = await until_status(client, job_id)
    return {"job": job, "progress": events.progress}


@pytest.fixture
async def store(pair: RunningSystem) -> AsyncIterator[JobStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        str(pair.settings.mongodb_url), tz_aware=True
    )
    yield JobStore(client, pair.settings.mongodb_database)
    await client.close()


def agreement(words: list[dict[str, Any]], turns: list[tuple[float, float, str]]) -> float:
    """The share of word time whose label is the reference speaker's, under the best one-to-one
    mapping of labels to speakers (words inside overlapping speech are left out)."""
    timed: dict[tuple[str, str], float] = {}
    total = 0.0
    for word in words:
        middle = (word["start"] + word["end"]) / 2
        speaking = {speaker for start, end, speaker in turns if start <= middle < end}
        if len(speaking) != 1:
            continue
        seconds = word["end"] - word["start"]
        key = (word["speaker"], speaking.pop())
        timed[key] = timed.get(key, 0.0) + seconds
        total += seconds
    labels = sorted({label for label, _ in timed})
    speakers = sorted({speaker for _, speaker in timed})
    best = 0.0
    for order in _permutations(speakers, len(labels)):
        best = max(
            best, sum(timed.get((label, s), 0.0) for label, s in zip(labels, order, strict=True))
        )
    return best / total if total else 0.0


def _permutations(items: list[str], length: int) -> list[tuple[str, ...]]:
    padded = items + [""] * max(0, length - len(items))
    return list(itertools.permutations(padded, length))


async def test_labels_hold_across_pieces_and_recognizers(
    labelled: dict[str, Any],
    store: JobStore,
    call: tuple[Path, list[tuple[float, float, str]]],
) -> None:
    job = labelled["job"]
    assert job["status"] == "done", job.get("error")
    pieces = await store.pieces(job["job_id"])
    words = [word for segment in job["segments"] for word in segment["words"]]
    labels = [segment["speaker"] for segment in job["segments"]]
    # The recording was cut, and both recognizers took part, each storing its pieces' voices.
    assert len(pieces) >= 3
    assert len({piece.worker for piece in pieces}) == 2, [piece.worker for piece in pieces]
    assert all(piece.voices is not None for piece in pieces)
    assert sum(len(piece.voices or ()) for piece in pieces) >= 10
    # `speakers=2` is obeyed; labels go S1, S2 in order of first appearance.
    assert [talk["speaker"] for talk in job["speakers"]] == ["S1", "S2"]
    assert labels[0] == "S1"
    assert all(word["speaker"] in ("S1", "S2") for word in words)
    # One clustering over all pieces: who speaks agrees with the call's own reference turns.
    _, turns = call
    assert agreement(words, turns) >= 0.8


def whole_labelled(audio: Path) -> Transcript:
    """The call decoded whole in this process, through the same speaker steps a recognizer's
    speaker process takes, with `speakers=2`."""
    config = EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=5)
    engine = load_engines(("faster-whisper",), config)["faster-whisper"]
    transcript = engine.transcribe(
        read_audio(audio), JobOptions(engine="faster-whisper", language="en")
    )
    voices = answer(FindVoices(audio, tuple(transcript.segments), 0.0))
    labelled: Transcript = answer(
        LabelSpeakers(transcript, tuple(voices), SpeakerLabels(speakers=2))
    )
    return labelled


async def test_pieces_are_labelled_as_the_whole_recording_is(
    labelled: dict[str, Any], call: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    audio, _ = call
    whole = await asyncio.to_thread(whole_labelled, audio)
    # The whole recording's labels, as turns to hold the pieces' words against.
    turns = [
        (word.start, word.end, word.speaker or "")
        for segment in whole.segments
        for word in segment.words
    ]
    words = [word for segment in labelled["job"]["segments"] for word in segment["words"]]
    assert agreement(words, turns) >= 0.9


async def test_progress_carries_labels_as_they_come(labelled: dict[str, Any]) -> None:
    progress = labelled["progress"]
    assert len(progress) >= 2  # the last piece ends the job
    segments = [segment for update in progress for segment in update["segments"]]
    assert segments
    assert all(segment["speaker"] in ("S1", "S2") for segment in segments)


async def test_every_format_carries_the_labels(
    labelled: dict[str, Any], pair: RunningSystem
) -> None:
    job_id = labelled["job"]["job_id"]
    async with pair.client() as client:
        transcript = f"/v1/jobs/{job_id}/transcript"
        text = (await client.get(transcript)).text
        subtitles = (await client.get(transcript, params={"format": "srt"})).text
        captions = (await client.get(transcript, params={"format": "vtt"})).text
        body = (await client.get(transcript, params={"format": "json"})).json()
    turns = text.split("\n\n")
    assert len(turns) >= 2
    assert all(turn.startswith(("S1: ", "S2: ")) for turn in turns), text
    cues = list(srt.parse(subtitles))
    assert cues
    assert all(cue.content.startswith(("S1: ", "S2: ")) for cue in cues)
    voices = [caption.voice for caption in webvtt.from_buffer(io.StringIO(captions)).captions]
    assert set(voices) == {"S1", "S2"}
    assert [talk["speaker"] for talk in body["speakers"]] == ["S1", "S2"]
    assert sum(talk["segments"] for talk in body["speakers"]) == len(body["segments"])


async def test_a_known_speaker_is_named(
    pair: RunningSystem, call: tuple[Path, list[tuple[float, float, str]]], tmp_path: Path
) -> None:
    audio, _ = call
    sheila = clip_of(audio, SHEILA, tmp_path / "sheila.wav")
    reference = "data:audio/wav;base64," + base64.b64encode(sheila.read_bytes()).decode()
    async with pair.client() as client:
        job_id = await accepted_job_id(
            client,
            audio,
            **{"speakers": "2", "speaker_names[]": "Sheila", "speaker_references[]": reference},
        )
        job = await until_status(client, job_id, within=110)
    assert job["status"] == "done", job.get("error")
    # She introduces herself in the call: "And I'm Sheila ..." is hers.
    [introduction] = [s for s in job["segments"] if "Sheila" in s["text"]]
    assert introduction["speaker"] == "Sheila"
    assert {talk["speaker"] for talk in job["speakers"]} == {"Sheila", "S1"}


async def test_the_openai_client_gets_diarized_json(
    pair: RunningSystem, call: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    """OpenAI's own client parses the answer into its diarized type."""
    audio, _ = call
    async with openai.AsyncOpenAI(
        base_url=f"{pair.base_url}/v1", api_key="not-needed", max_retries=0, timeout=115
    ) as client:
        with audio.open("rb") as file:
            result = await client.audio.transcriptions.create(
                model="gpt-4o-transcribe-diarize", file=file, response_format="diarized_json"
            )
    assert isinstance(result, TranscriptionDiarized)
    assert result.segments
    assert all(segment.speaker.startswith("S") for segment in result.segments)
    assert result.segments[0].speaker == "S1"
    assert "Sheila" in result.text


async def test_without_the_speaker_model_labels_are_refused_at_upload(
    mongodb_url: str, tmp_path: Path, call: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    audio, _ = call
    async with (
        launched(
            tmp_path,
            mongodb_url,
            services=("gateway", "recognizer"),
            engines=("faster-whisper",),
            recognizer_slots=1,
            speaker_labels=False,
        ) as plain,
        plain.client() as client,
    ):
        models = (await client.get("/v1/models")).json()["data"]
        refused = await client.post(
            "/v1/jobs", files={"file": (audio.name, audio.read_bytes())}, data={"diarize": "true"}
        )
        openai = await client.post(
            "/v1/audio/transcriptions",
            files={"file": (audio.name, audio.read_bytes())},
            data={"model": "whisper-1", "response_format": "diarized_json"},
        )
    assert [model["labels_speakers"] for model in models] == [False]
    assert refused.status_code == 422, refused.text
    assert "No recognizer labels speakers" in refused.json()["detail"]
    assert openai.status_code == 400
    assert openai.json()["error"]["param"] == "response_format"


async def test_the_page_asks_for_labels_and_shows_them(
    pair: RunningSystem, page: Page, call: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    audio, _ = call
    refused = await only_the_service(page, pair.base_url)
    await page.goto(pair.base_url)
    await expect(page.locator("#engine option")).not_to_have_count(0)
    checkbox = page.get_by_label("Label speakers")
    await expect(checkbox).to_be_enabled()
    await checkbox.check()
    await page.set_input_files("#files", audio)
    await page.get_by_role("button", name="Transcribe", exact=True).click()
    card = page.locator("#work .card").first
    finished = re.compile("^(Done|Failed)$")
    await expect(card.locator(".status")).to_have_text(finished, timeout=110_000)
    await page.screenshot(path=SCREENSHOTS / "page-speakers.png", full_page=True)
    labels = await card.locator(".segments .speaker").all_inner_texts()
    segments = await card.locator(".segments button").count()
    assert await card.locator(".status").inner_text() == "Done"
    assert len(labels) == segments
    assert labels[0] == "S1"
    assert set(labels) <= {"S1", "S2", "S3"}
    assert refused == []
