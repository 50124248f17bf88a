"""Speech engines behind one small interface, one module per engine, each with its loader:
`faster_whisper` (faster-whisper and whisper-base), `sphinx`, `google`, `hosted` (openai, groq).
Synchronous and CPU-bound: they run in slot processes. What each engine can do (languages,
tasks, word timings) is its spec in shared/engines.py; LOADERS holds how to load it, by the same
name.
"""

from recognizer.engines import faster_whisper, google, hosted, sphinx
from recognizer.engines.base import (
    DetectsLanguage,
    Engine,
    EngineConfig,
    EngineLoader,
    EngineUnavailable,
    OnlineEngineError,
    online_failure,
    read_audio,
)
from recognizer.engines.faster_whisper import FasterWhisperEngine, resolve_whisper_model
from shared.provenance import ModelProvenance

LOADERS: dict[str, EngineLoader] = {
    **faster_whisper.LOADERS,
    **sphinx.LOADERS,
    **google.LOADERS,
    **hosted.LOADERS,
}


def _loader(name: str) -> EngineLoader:
    try:
        return LOADERS[name]
    except KeyError:
        raise EngineUnavailable(f"no engine named {name!r}") from None


def load_engine(name: str, config: EngineConfig) -> Engine:
    return _loader(name).load(config)


def load_engines(names: tuple[str, ...], config: EngineConfig) -> dict[str, Engine]:
    return {name: load_engine(name, config) for name in names}


def describe_model(engine: str, config: EngineConfig) -> ModelProvenance:
    """What `engine` runs on here; raises EngineUnavailable if pinned weights are not the pinned ones."""
    return _loader(engine).describe(config)


__all__ = [
    "LOADERS",
    "DetectsLanguage",
    "Engine",
    "EngineConfig",
    "EngineLoader",
    "EngineUnavailable",
    "FasterWhisperEngine",
    "OnlineEngineError",
    "describe_model",
    "load_engine",
    "load_engines",
    "online_failure",
    "read_audio",
    "resolve_whisper_model",
]
