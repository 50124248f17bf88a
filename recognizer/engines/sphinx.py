"""CMU Sphinx through SpeechRecognition (pocketsphinx): the tutorial's engine, US English only."""

from pathlib import Path

import speech_recognition as sr

from recognizer.engines.base import (
    EngineConfig,
    EngineLoader,
    EngineUnavailable,
    files_sha256,
    packaged,
    seconds_of,
    tidy,
    version_of,
)
from shared.engines import SPHINX, SPHINX_LANGUAGES
from shared.jobs.options import JobOptions
from shared.provenance import ModelProvenance
from shared.transcripts import Segment, Transcript, Word

SPHINX_DATA = Path(sr.__file__).parent / "pocketsphinx-data" / "en-US"


def _sphinx_word(token: str) -> str:
    """A Sphinx token as a word: fillers (<s>, <sil>, [NOISE]) become '', 'word(2)' 'word'."""
    if token.startswith(("<", "[")):
        return ""
    return token.split("(", 1)[0]


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

    def transcribe(self, audio: sr.AudioData, options: JobOptions) -> Transcript:
        language = options.language
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
        text = tidy(hypothesis.hypstr)
        segment = Segment(
            start=words[0].start if words else 0.0,
            end=words[-1].end if words else seconds_of(audio),
            text=text,
            words=words,
        )
        return Transcript(
            text=text,
            language=language,
            segments=[segment],
            confidence=decoder.get_logmath().exp(hypothesis.prob),
        )


def _describe(_config: EngineConfig) -> ModelProvenance:
    files = sorted(path for path in SPHINX_DATA.rglob("*") if path.is_file())
    return ModelProvenance(
        engine=SPHINX,
        model="CMU Sphinx en-US",
        model_package=packaged("SpeechRecognition", "pocketsphinx"),
        model_sha256=files_sha256(files, SPHINX_DATA),
        service_version=version_of("stt-pipeline"),
    )


LOADERS = {SPHINX: EngineLoader(SphinxEngine, _describe)}
