"""What Whisper base makes of speech in other languages, transcribed and translated into English.

    python -m bench.translation [MEDIA ...]

Without files it speaks a German and a Spanish sentence with espeak-ng (the ones the tests use).
Each file is converted as the transcoder converts uploads and decoded by the service's own
whisper-base engine (beam 5, voice-activity filter on, Whisper's temperature schedule), once as
it is spoken and once into English; prints both texts with the seconds each took.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from recognizer.engines import EngineConfig, load_engine, read_audio
from recognizer.settings import RecognizerSettings
from recognizer.weights import whisper_base
from shared.engines import AUTO_LANGUAGE, TASKS, WHISPER_BASE
from shared.jobs.options import JobOptions
from tests import media
from transcoder.convert import to_wav


def spoken_samples(folder: Path) -> list[Path]:
    return [
        media.speak(media.GERMAN_SENTENCE, folder / "german.wav", voice="de"),
        media.speak(media.SPANISH_SENTENCE, folder / "spanish.wav", voice="es"),
    ]


def main(files: list[Path]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="stt-translation-"))
    base = whisper_base(RecognizerSettings().models_dir / "whisper-base")
    config = EngineConfig("tiny.en", cpu_threads=1, beam_size=5, whisper_base_folder=str(base))
    engine = load_engine(WHISPER_BASE, config)
    for source in files or spoken_samples(folder):
        wav = folder / f"{source.stem}.16k.wav"
        to_wav(source, wav, timeout_seconds=600, max_seconds=3600)
        audio = read_audio(wav)
        for task in TASKS:
            started = time.perf_counter()
            options = JobOptions(engine=WHISPER_BASE, language=AUTO_LANGUAGE, task=task)
            transcript = engine.transcribe(audio, options)
            seconds = time.perf_counter() - started
            print(
                f"{source.name} [{transcript.language}] {task} ({seconds:.1f} s): {transcript.text}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    main(parser.parse_args().files)
