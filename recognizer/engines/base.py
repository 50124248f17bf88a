"""What every engine module shares: the interface an engine offers a slot, the settings engines
are loaded with, the errors, and where a model's weights came from (for provenance). What a job
asks of the decoder is its options (shared/jobs/options.py)."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol, runtime_checkable

import speech_recognition as sr

from recognizer import quality
from shared.faults import ServiceUnavailable, StartupError, may_pass
from shared.jobs.options import JobOptions
from shared.provenance import ModelProvenance
from shared.transcripts import Segment, Transcript


class EngineUnavailable(StartupError):
    """An engine this recognizer was told to serve cannot run here."""


class Engine(Protocol):
    def transcribe(self, audio: sr.AudioData, options: JobOptions) -> Transcript:
        """`audio` recognized as the job's options ask, in `options.language`; an engine reads
        the options it has a use for and ignores the rest."""


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


@dataclass(frozen=True)
class EngineLoader:
    """How the recognizer loads one engine, and says what it loaded it from."""

    load: Callable[[EngineConfig], Engine]
    describe: Callable[[EngineConfig], ModelProvenance]
    """The model behind it, weights hashed from the bytes on disk; raises EngineUnavailable when
    pinned weights are not the pinned ones."""


def tidy(text: str) -> str:
    return " ".join(text.split())


def seconds_of(audio: sr.AudioData) -> float:
    return float(len(audio.frame_data) / (audio.sample_rate * audio.sample_width))


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


def untimed(audio: sr.AudioData, text: str, language: str, confidence: float | None) -> Transcript:
    segments = [Segment(start=0.0, end=seconds_of(audio), text=text)] if text else []
    return Transcript(text=text, language=language, segments=segments, confidence=confidence)


def read_audio(path: Path) -> sr.AudioData:
    with sr.AudioFile(str(path)) as source:
        return sr.Recognizer().record(source)


_CHUNK = 4 * 1024 * 1024


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def packaged(*distributions: str) -> str:
    return ", ".join(f"{name} {version_of(name)}" for name in distributions)


def files_sha256(files: list[Path], root: Path | None = None) -> str:
    """SHA-256 of the files' bytes in order; with `root`, each file's path below it first."""
    digest = hashlib.sha256()
    for path in files:
        if root is not None:
            digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as source:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
