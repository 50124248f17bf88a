"""What the encoder's window costs and what it hears: short sentences decoded with the shortest
window at 30 s (faster-whisper's own), 20 s (ours) and 10 s.

    python -m bench.windows                  # the figures of docs/performance.md

In this process, as a slot runs them (one thread, beam 5, `recognizer.engines`): eight English
espeak-ng sentences (the live benchmark's), a German one, and a Spanish one translated into
English, with Whisper base and (English only) tiny.en. Each is decoded three times per window
and the fastest counts. Writes `bench/results/windows.json`. Run it on an idle machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.accuracy import normalised
from bench.decoding import errors
from bench.live import SENTENCES
from bench.run import RESULTS, machine
from recognizer.engines import EngineConfig, FasterWhisperEngine, read_audio
from recognizer.settings import RecognizerSettings
from recognizer.weights import whisper_base
from shared.engines import FASTER_WHISPER, TRANSLATE
from shared.jobs.options import JobOptions

SHORTEST_WINDOWS = (3000, 2000, 1000)
GERMAN = "Guten Morgen. Bitte schicken Sie den Bericht bis Freitag an die Buchhaltung."
SPANISH = "Buenos días. El tren a Madrid sale a las ocho de la mañana desde la estación central."
SPANISH_IN_ENGLISH = (
    "Good morning. The train to Madrid leaves at eight in the morning from the central station."
)
RUNS = 3


def in_(language: str) -> JobOptions:
    return JobOptions(engine=FASTER_WHISPER, language=language)


def spoken(text: str, voice: str, wav: Path) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
    return wav


def decodings(
    engine: FasterWhisperEngine, clips: list[tuple[str, Path, JobOptions]]
) -> list[dict[str, Any]]:
    results = []
    for shortest in SHORTEST_WINDOWS:
        engine._model.shortest_window_frames = shortest
        for reference, wav, options in clips:
            audio = read_audio(wav)
            best, text = float("inf"), ""
            for _ in range(RUNS):
                started = time.perf_counter()
                text = engine.transcribe(audio, options).text
                best = min(best, time.perf_counter() - started)
            wrong = sum(errors(normalised(reference), normalised(text)).values())
            results.append({
                "shortest_window_seconds": shortest // 100,
                "reference": reference,
                "task": options.task,
                "seconds": round(best, 3),
                "errors": wrong,
                "reference_words": len(normalised(reference)),
                "text": text,
            })  # fmt: skip
    return results


def summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for shortest in SHORTEST_WINDOWS:
        mine = [r for r in results if r["shortest_window_seconds"] == shortest // 100]
        english = [r for r in mine if r["reference"] in SENTENCES]
        others = [r for r in mine if r["reference"] not in SENTENCES]
        rows.append({
            "shortest_window_seconds": shortest // 100,
            "english_median_seconds": round(statistics.median(r["seconds"] for r in english), 3),
            "english_wer": round(
                sum(r["errors"] for r in english) / sum(r["reference_words"] for r in english), 4
            ),
            "others": [{"task": r["task"], "errors": r["errors"], "text": r["text"]} for r in others],
        })  # fmt: skip
    return rows


def main() -> None:
    base = whisper_base(RecognizerSettings().models_dir / "whisper-base")
    report: dict[str, Any] = {"machine": machine(), "engines": {}}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        english = [
            (sentence, spoken(sentence, "en-us", folder / f"en-{n}.wav"), in_("en"))
            for n, sentence in enumerate(SENTENCES)
        ]
        german = (GERMAN, spoken(GERMAN, "de", folder / "de.wav"), in_("de"))
        spanish = spoken(SPANISH, "es", folder / "es.wav")
        translated = (
            SPANISH_IN_ENGLISH,
            spanish,
            JobOptions(engine=FASTER_WHISPER, language="es", task=TRANSLATE),
        )
        models = {
            "whisper-base": (str(base), [*english, german, translated]),
            "tiny.en": ("tiny.en", english),
        }
        for label, (model, clips) in models.items():
            engine = FasterWhisperEngine(EngineConfig(model, cpu_threads=1, beam_size=5))
            engine.transcribe(read_audio(english[0][1]), in_("en"))  # warm
            results = decodings(engine, clips)
            report["engines"][label] = {"summary": summary(results), "decodings": results}
            for row in report["engines"][label]["summary"]:
                print(label, json.dumps(row, ensure_ascii=False))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "windows.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
