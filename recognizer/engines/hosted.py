"""Whisper as a service, through SpeechRecognition: OpenAI's transcription API and Groq's (or a
compatible server at OPENAI_BASE_URL or GROQ_BASE_URL). Online: the audio leaves this machine."""

import importlib
import io
import os
from dataclasses import dataclass
from typing import Any

import speech_recognition as sr

from recognizer.engines.base import (
    EngineConfig,
    EngineLoader,
    EngineUnavailable,
    online_failure,
    tidy,
    untimed,
    version_of,
)
from shared.engines import AUTO_LANGUAGE, GROQ, OPENAI, TRANSLATE
from shared.jobs.options import JobOptions
from shared.provenance import ModelProvenance
from shared.transcripts import Transcript


@dataclass(frozen=True)
class HostedWhisper:
    """A provider of Whisper as a service that SpeechRecognition speaks to."""

    title: str
    key_variable: str
    method: str
    client_module: str
    client_class: str


HOSTED_WHISPER = {
    OPENAI: HostedWhisper("OpenAI", "OPENAI_API_KEY", "recognize_openai", "openai", "OpenAI"),
    GROQ: HostedWhisper("Groq", "GROQ_API_KEY", "recognize_groq", "groq", "Groq"),
}


class HostedWhisperEngine:
    """OpenAI's or Groq's transcription API (or a compatible server at OPENAI_BASE_URL or
    GROQ_BASE_URL); the key comes from the provider's usual environment variable."""

    def __init__(self, provider: HostedWhisper, model: str) -> None:
        if not os.environ.get(provider.key_variable):
            raise EngineUnavailable(
                f"{provider.title} needs {provider.key_variable} in the environment"
            )
        if not hasattr(sr.Recognizer, provider.method):
            raise EngineUnavailable(f"SpeechRecognition offers no {provider.method} here")
        try:
            client = importlib.import_module(provider.client_module)
        except ImportError as error:
            raise EngineUnavailable(
                f"{provider.title} needs the {provider.client_module!r} package"
            ) from error
        self._provider = provider
        self._recognize = getattr(sr.Recognizer(), provider.method)
        self._model = model
        # SpeechRecognition only transcribes: translations go to the provider's client directly.
        self._client: Any = getattr(client, provider.client_class)()
        # The client's own error for no connection or a timeout (it has retried twice by then).
        self._connection_error: type[Exception] = client.APIConnectionError

    def transcribe(self, audio: sr.AudioData, options: JobOptions) -> Transcript:
        asked: dict[str, str | float] = {}
        if options.language != AUTO_LANGUAGE and options.task != TRANSLATE:
            asked["language"] = options.language
        # Hosted Whisper has no hotwords: the names go in the prompt, which steers spelling.
        prompt = " ".join(filter(None, (options.hotwords_text, options.prompt)))
        if prompt:
            asked["prompt"] = prompt
        if options.temperature is not None:
            asked["temperature"] = options.temperature
        try:
            if options.task == TRANSLATE:
                text = self._translate(audio, **asked)
            else:
                text = self._recognize(audio, model=self._model, **asked)
        except Exception as error:  # the provider client's own errors
            raise online_failure(self._provider.title, error, self._connection_error) from error
        return untimed(audio, tidy(text), options.language, None)

    def _translate(self, audio: sr.AudioData, **options: str | float) -> str:
        wav = io.BytesIO(audio.get_wav_data())
        wav.name = "audio.wav"
        answer = self._client.audio.translations.create(file=wav, model=self._model, **options)
        return str(answer.text)


def _loader(name: str, model_of: Any) -> EngineLoader:
    def load(config: EngineConfig) -> HostedWhisperEngine:
        return HostedWhisperEngine(HOSTED_WHISPER[name], model_of(config))

    def describe(config: EngineConfig) -> ModelProvenance:
        return ModelProvenance(
            engine=name, model=model_of(config), service_version=version_of("stt-pipeline")
        )

    return EngineLoader(load, describe)


LOADERS = {
    OPENAI: _loader(OPENAI, lambda config: config.openai_model),
    GROQ: _loader(GROQ, lambda config: config.groq_model),
}
