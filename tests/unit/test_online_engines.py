"""The online engines, tested up to the network: the provider's side is a stand-in here."""

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.request import Request

import pytest

from recognizer.engines import EngineConfig, EngineUnavailable, load_engine, read_audio
from tests import media
from transcoder.convert import to_wav

CONFIG = EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=1, google_api_key="k3y")


@pytest.fixture(scope="module")
def speech_wav(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("online") / "speech.wav"
    to_wav(clips["wav"], target, timeout_seconds=60)
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
    transcript = load_engine("google", CONFIG).transcribe(read_audio(speech_wav), "de")
    [request] = sent
    assert "lang=de" in request.full_url
    assert "key=k3y" in request.full_url
    assert request.get_header("Content-type", "").startswith("audio/x-flac")
    assert isinstance(request.data, bytes)
    assert request.data[:4] == b"fLaC"
    assert (transcript.text, transcript.confidence) == ("send the report", 0.8)
    assert transcript.segments[0].end == pytest.approx(4.0, abs=1.0)


class _FakeOpenAI(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        answer = json.dumps({"text": " Please send the quarterly report. "}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def provider_server() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A stand-in for the provider's HTTP API on loopback, keeping what it was sent."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _FakeOpenAI.received = []
    yield f"http://127.0.0.1:{server.server_port}", _FakeOpenAI.received
    server.shutdown()


@pytest.mark.parametrize(
    ("engine", "provider", "base_path", "model"),
    [("openai", "OPENAI", "/v1", "whisper-1"), ("groq", "GROQ", "", "whisper-large-v3-turbo")],
)
def test_hosted_whisper_gets_the_audio_model_language_and_prompt(
    speech_wav: Path,
    provider_server: tuple[str, list[tuple[str, bytes]]],
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    provider: str,
    base_path: str,
    model: str,
) -> None:
    url, received = provider_server
    monkeypatch.setenv(f"{provider}_API_KEY", "sk-test")
    monkeypatch.setenv(f"{provider}_BASE_URL", url + base_path)
    transcript = load_engine(engine, CONFIG).transcribe(
        read_audio(speech_wav), "en", prompt="quarterly"
    )
    [(path, body)] = received
    assert path.endswith("/v1/audio/transcriptions")
    for part in (
        b'name="model"\r\n\r\n' + model.encode(),
        b'name="language"\r\n\r\nen',
        b'name="prompt"\r\n\r\nquarterly',
        b"RIFF",
    ):
        assert part in body
    assert transcript.text == "Please send the quarterly report."
    assert "quarterly" in media.words_of(transcript.text)


def test_openai_without_a_key_stops_the_recognizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EngineUnavailable, match="OPENAI_API_KEY"):
        load_engine("openai", CONFIG)
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(EngineUnavailable, match="GROQ_API_KEY"):
        load_engine("groq", CONFIG)
