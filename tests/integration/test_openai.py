"""The OpenAI-compatible endpoint, driven by the official `openai` client."""

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import openai
import pytest
import srt
import webvtt

from tests import media
from tests.integration.conftest import FAST, RunningSystem


@pytest.fixture
async def client(system: RunningSystem) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{system.base_url}/v1", api_key="not-needed", max_retries=0, timeout=120
    ) as connected:
        yield connected


async def test_whisper_1_answers_with_the_words(
    client: openai.AsyncOpenAI, clips: dict[str, Path]
) -> None:
    with clips["mp3"].open("rb") as file:
        result = await client.audio.transcriptions.create(model="whisper-1", file=file)
    assert set(media.EXPECTED_WORDS) <= media.words_of(result.text)


async def test_verbose_json_has_segments_and_words(
    client: openai.AsyncOpenAI, clips: dict[str, Path]
) -> None:
    with clips["wav"].open("rb") as file:
        result = await client.audio.transcriptions.create(
            model="faster-whisper",
            file=file,
            language="en",
            prompt="A note about a quarterly report.",
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert result.language == "en"
    assert 2 < result.duration < 8
    assert result.segments is not None
    assert result.segments[0].start < result.segments[0].end
    assert result.words is not None
    assert " ".join(word.word for word in result.words) == result.text


async def test_temperature_reaches_the_model(
    client: openai.AsyncOpenAI, clips: dict[str, Path]
) -> None:
    with clips["wav"].open("rb") as file:
        result = await client.audio.transcriptions.create(
            model=FAST, file=file, temperature=0.4, response_format="verbose_json"
        )
    assert result.segments is not None
    assert {segment.temperature for segment in result.segments} == {0.4}
    for temperature in (1.5, -0.1):
        with clips["wav"].open("rb") as file, pytest.raises(openai.BadRequestError) as refused:
            await client.audio.transcriptions.create(
                model="whisper-1", file=file, temperature=temperature
            )
        assert refused.value.param == "temperature"


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
async def test_text_and_subtitle_formats(
    client: openai.AsyncOpenAI,
    clips: dict[str, Path],
    response_format: Literal["text", "srt", "vtt"],
) -> None:
    with clips["mp4"].open("rb") as file:
        result = await client.audio.transcriptions.create(
            model=FAST,
            file=file,
            response_format=response_format,
        )
    assert isinstance(result, str)
    if response_format == "srt":
        [cue] = srt.parse(result)
        result = cue.content
    elif response_format == "vtt":
        [caption] = webvtt.from_buffer(io.StringIO(result)).captions
        result = caption.text
    assert "quarterly" in media.words_of(result)


async def test_spanish_speech_comes_back_in_english_and_sphinx_refuses_to_translate(
    client: openai.AsyncOpenAI, tmp_path: Path
) -> None:
    spanish = media.speak(media.SPANISH_SENTENCE, tmp_path / "es.wav", voice="es")
    with spanish.open("rb") as file:
        # At temperature 0 alone, without the retries at higher ones: the same words, sooner.
        result = await client.audio.translations.create(
            model="whisper-1", file=file, response_format="verbose_json", temperature=0
        )
    words = media.words_of(result.text)
    assert set(media.TRANSLATED_WORDS["es"]) <= words, result.text
    assert not set(media.UNTRANSLATED_WORDS["es"]) & words, result.text
    assert result.model_dump()["task"] == "translate"

    with spanish.open("rb") as file, pytest.raises(openai.BadRequestError) as refused:
        await client.audio.translations.create(model="sphinx", file=file)
    assert (refused.value.code, refused.value.param) == ("unsupported_task", "model")


async def test_errors_come_in_openai_shape(
    client: openai.AsyncOpenAI, clips: dict[str, Path], tmp_path: Path
) -> None:
    with clips["wav"].open("rb") as file, pytest.raises(openai.BadRequestError) as unknown:
        await client.audio.transcriptions.create(model="gpt-5-audio", file=file)
    assert unknown.value.code == "model_not_found"
    assert unknown.value.param == "model"
    assert "gpt-5-audio" in unknown.value.message

    with clips["wav"].open("rb") as file, pytest.raises(openai.BadRequestError) as language:
        await client.audio.transcriptions.create(model=FAST, file=file, language="de")
    assert (language.value.code, language.value.param) == ("unsupported_language", "language")
    assert "Use engine 'whisper-base'" in language.value.message

    silent_video = media.video_without_audio(tmp_path / "silent.mp4")
    with silent_video.open("rb") as file, pytest.raises(openai.BadRequestError) as failed:
        await client.audio.transcriptions.create(model="whisper-1", file=file)
    assert failed.value.code == "no_audio"

    notes = tmp_path / "notes.mp3"
    notes.write_text("not audio at all\n" * 20)
    with notes.open("rb") as file, pytest.raises(openai.APIStatusError) as refused:
        await client.audio.transcriptions.create(model="whisper-1", file=file)
    assert refused.value.status_code == 415
    assert "not audio or video" in refused.value.message


async def test_the_models_list_names_the_engines_and_the_fleet_behind_them(
    client: openai.AsyncOpenAI,
) -> None:
    models = {model.id: model for model in (await client.models.list()).data}
    assert set(models) == {"faster-whisper", "whisper-base", "sphinx"}
    whisper = models["faster-whisper"].model_dump()
    assert whisper["languages"] == ["en"]
    assert whisper["recognizers"] >= 1
    assert whisper["slots"] >= 1
    assert whisper["queued"] >= 0
    assert "de" in models["whisper-base"].model_dump()["languages"]
