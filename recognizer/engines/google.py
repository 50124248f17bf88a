"""Google's free Web Speech API through SpeechRecognition: online, text and a confidence, no times."""

import speech_recognition as sr

from recognizer.engines.base import (
    EngineConfig,
    EngineLoader,
    online_failure,
    tidy,
    untimed,
    version_of,
)
from shared.engines import GOOGLE
from shared.jobs.options import JobOptions
from shared.provenance import ModelProvenance
from shared.transcripts import Transcript


class GoogleEngine:
    """Google's free Web Speech API, as the tutorial used it: text and a confidence, no times."""

    def __init__(self, config: EngineConfig) -> None:
        self._recognizer = sr.Recognizer()
        self._key = config.google_api_key

    def transcribe(self, audio: sr.AudioData, options: JobOptions) -> Transcript:
        language = options.language
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
        return untimed(audio, tidy(best.get("transcript", "")), language, best.get("confidence"))


def _describe(_config: EngineConfig) -> ModelProvenance:
    return ModelProvenance(
        engine=GOOGLE, model="Web Speech API", service_version=version_of("stt-pipeline")
    )


LOADERS = {GOOGLE: EngineLoader(GoogleEngine, _describe)}
