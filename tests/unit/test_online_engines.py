"""The online engines, tested up to the network: the provider's side is a stand-in here."""

import json
from email.message import Message
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request

import pytest

from recognizer.engines import (
    EngineConfig,
    EngineUnavailable,
    OnlineEngineError,
    load_engine,
    read_audio,
)
from scripts.stack import free_port
from shared.faults import ServiceUnavailable
from shared.jobs.options import JobOptions
from tests import media
from tests.stand_in import http_stand_in
from transcoder.convert import to_wav

PROVIDER_ANSWER = {"text": " Please send the quarterly report. "}
CONFIG = EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=1, google_api_key="k3y")


@pytest.fixture(scope="module")
def speech_wav(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("online") / "speech.wav"
    to_wav(clips["wav"], target, timeout_seconds=60, max_seconds=3600)
    return target


class _Answer:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def read(self) -> bytes:
        return self._body


def test_google_is_asked_for_the_language_with_flac_audio(
    speech_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Request] = []

    def fake_urlopen(request: Request, timeout: float) -> _Answer:
        sent.append(request)
        answer = {
            "result": [{"alternative": [{"transcript": "send the report", "confidence": 0.8}]}]
        }
        return _Answer(b'{"result":[]}\n' + json.dumps(answer).encode())

    monkeypatch.setattr("speech_recognition.recognizers.google.urlopen", fake_urlopen)
    transcript = load_engine("google", CONFIG).transcribe(
        read_audio(speech_wav), JobOptions(engine="google", language="de")
    )
    [request] = sent
    assert "lang=de" in request.full_url
    assert "key=k3y" in request.full_url
    assert request.get_header("Content-type", "").startswith("audio/x-flac")
    assert isinstance(request.data, bytes)
    assert request.data[:4] == b"fLaC"
    assert (transcript.text, transcript.confidence) == ("send the report", 0.8)
    assert transcript.segments[0].end == pytest.approx(4.0, abs=1.0)


@pytest.mark.parametrize(
    ("engine", "provider_name", "base_path", "model"),
    [("openai", "OPENAI", "/v1", "whisper-1"), ("groq", "GROQ", "", "whisper-large-v3-turbo")],
)
def test_hosted_whisper_gets_the_audio_model_language_and_prompt(
    speech_wav: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    provider_name: str,
    base_path: str,
    model: str,
) -> None:
    with http_stand_in(PROVIDER_ANSWER) as stand_in:
        monkeypatch.setenv(f"{provider_name}_API_KEY", "sk-test")
        monkeypatch.setenv(f"{provider_name}_BASE_URL", stand_in.url + base_path)
        transcript = load_engine(engine, CONFIG).transcribe(
            read_audio(speech_wav),
            JobOptions(engine=engine, language="en", prompt="quarterly", temperature=0.2),
        )
    [sent] = stand_in.received
    assert sent.path.endswith("/v1/audio/transcriptions")
    for part in (
        b'name="model"\r\n\r\n' + model.encode(),
        b'name="language"\r\n\r\nen',
        b'name="prompt"\r\n\r\nquarterly',
        b'name="temperature"\r\n\r\n0.2',
        b"RIFF",
    ):
        assert part in sent.body
    assert transcript.text == "Please send the quarterly report."
    assert "quarterly" in media.words_of(transcript.text)


@pytest.mark.parametrize(
    ("engine", "provider_name", "base_path"),
    [("openai", "OPENAI", "/v1"), ("groq", "GROQ", "")],
)
def test_hosted_whisper_translates_through_the_provider_with_hotwords_in_the_prompt(
    speech_wav: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    provider_name: str,
    base_path: str,
) -> None:
    with http_stand_in(PROVIDER_ANSWER) as stand_in:
        monkeypatch.setenv(f"{provider_name}_API_KEY", "sk-test")
        monkeypatch.setenv(f"{provider_name}_BASE_URL", stand_in.url + base_path)
        options = JobOptions(
            engine=engine,
            language="de",
            prompt="A call.",
            task="translate",
            hotwords=["Zarvokian", "Quillmore"],
        )
        transcript = load_engine(engine, CONFIG).transcribe(read_audio(speech_wav), options)
    [sent] = stand_in.received
    assert sent.path.endswith("/v1/audio/translations")
    assert b'name="prompt"\r\n\r\nZarvokian, Quillmore A call.' in sent.body
    # A translation names no language: the provider hears which it is.
    assert b'name="language"' not in sent.body
    assert b"RIFF" in sent.body
    assert transcript.text == "Please send the quarterly report."


@pytest.mark.parametrize(
    ("status", "raised"),
    [
        (429, ServiceUnavailable),
        (503, ServiceUnavailable),
        (401, OnlineEngineError),
        (400, OnlineEngineError),
    ],
)
def test_hosted_whisper_failures_are_retried_only_when_they_may_pass(
    speech_wav: Path, monkeypatch: pytest.MonkeyPatch, status: int, raised: type[Exception]
) -> None:
    # Three answers: the SDK's own two retries come first.
    with http_stand_in(PROVIDER_ANSWER, failures=(status,) * 3) as stand_in:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", stand_in.url + "/v1")
        with pytest.raises(raised, match=f"OpenAI failed: .*{status}"):
            load_engine("openai", CONFIG).transcribe(
                read_audio(speech_wav), JobOptions(engine="openai", language="en")
            )


def test_an_unreachable_provider_is_retried_later(
    speech_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ServiceUnavailable, match="OpenAI failed: Connection error"):
        load_engine("openai", CONFIG).transcribe(
            read_audio(speech_wav), JobOptions(engine="openai", language="en")
        )


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (
            HTTPError("https://speech", 503, "Service Unavailable", Message(), None),
            ServiceUnavailable,
        ),
        (HTTPError("https://speech", 403, "Forbidden", Message(), None), OnlineEngineError),
        (URLError(ConnectionRefusedError(111, "Connection refused")), ServiceUnavailable),
        (TimeoutError("The read operation timed out"), ServiceUnavailable),
    ],
)
def test_google_failures_are_retried_only_when_they_may_pass(
    speech_wav: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, raised: type[Exception]
) -> None:
    def failing_urlopen(request: Request, timeout: float) -> _Answer:
        raise error

    monkeypatch.setattr("speech_recognition.recognizers.google.urlopen", failing_urlopen)
    with pytest.raises(raised, match="Google's speech service failed"):
        load_engine("google", CONFIG).transcribe(
            read_audio(speech_wav), JobOptions(engine="google", language="en")
        )


def test_openai_without_a_key_stops_the_recognizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EngineUnavailable, match="OPENAI_API_KEY"):
        load_engine("openai", CONFIG)
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(EngineUnavailable, match="GROQ_API_KEY"):
        load_engine("groq", CONFIG)
