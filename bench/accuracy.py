"""Word error rate per engine on real speech, and the engine time per second of audio.

    python -m bench.accuracy                   # the figures and chart of docs/performance.md
    python -m bench.accuracy --engines whisper-base
    python -m bench.accuracy --rescore         # count the stored texts again (`normalised` changed)

Decodes the 15 recordings of `bench/speech.py` (read, poetry, spontaneous speech with a cold,
a phone call; about 5.4 minutes) in this process with each engine as the recognizer's slots
run it (recognizer.engines, one thread, `language="en"`), normalises the engine's text and the
reference the same way (`normalised`) and counts substitutions, deletions and insertions with
jiwer. Writes `bench/results/accuracy.json` and `accuracy.png`. Run it on an idle machine:
other load changes the times, not the words.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import jiwer

from bench.run import RESULTS, machine
from bench.speech import Clip, corpus
from recognizer.engines import EngineConfig, load_engine, read_audio
from recognizer.settings import RecognizerSettings
from recognizer.weights import whisper_base
from scripts.stack import ROOT
from shared.engines import FASTER_WHISPER, SPHINX, WHISPER_BASE
from shared.jobs.options import JobOptions

ENGINES = (WHISPER_BASE, FASTER_WHISPER, SPHINX)
LABELS = {WHISPER_BASE: "whisper-base", FASTER_WHISPER: "tiny.en", SPHINX: "sphinx"}

# Hesitations people say and references write down but no engine is asked to transcribe.
FILLERS = frozenset({"uh", "um", "er", "ah", "hmm", "mm", "mhm"})
# British spellings, written the American way as Whisper mostly does (with the endings below).
BRITISH = {
    "metre": "meter", "centre": "center", "theatre": "theater", "colour": "color",
    "favour": "favor", "honour": "honor", "labour": "labor", "neighbour": "neighbor",
    "organis": "organiz", "realis": "realiz", "recognis": "recogniz",
}  # fmt: skip
ENDINGS = ("", "s", "e", "es", "ed", "ing", "er", "ers", "able", "hood", "ite", "ites", "ation")
SPELLED = {
    "mr": "mister",
    "mrs": "missus",
    "dr": "doctor",
    "ok": "okay",
    "yknow": "you know",
    **{stem + end: american + end for stem, american in BRITISH.items() for end in ENDINGS},
}
# Contractions other than "n't" whose long form is not in doubt ("'s" and "'d" are).
CONTRACTIONS = {"m": "am", "re": "are", "ve": "have", "ll": "will"}
ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(number: int) -> str:
    """`number` (0 to 999,999) in English words, as a reference would spell it."""
    if number < 20:
        return ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return TENS[tens] + (f" {ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    thousands, rest = divmod(number, 1000)
    return f"{number_words(thousands)} thousand" + (f" {number_words(rest)}" if rest else "")


def normalised(text: str) -> list[str]:
    """Lowercase words without punctuation, digits spelled out, "n't", "'m", "'re", "'ve" and
    "'ll" written out, British spellings as American ones, fillers and apostrophes gone."""
    text = re.sub("\u2019", "'", text.lower())
    text = re.sub(
        r"\b(ca|wo)n't\b", lambda m: {"ca": "can", "wo": "will"}[m.group(1)] + " not", text
    )
    text = re.sub(r"n't\b", " not", text)
    text = re.sub(r"(?<=\w)'(m|re|ve|ll)\b", lambda m: " " + CONTRACTIONS[m.group(1)], text)
    text = text.replace("'", "")
    text = re.sub(r"\d+", lambda digits: f" {number_words(int(digits.group()))} ", text)
    words = re.sub(r"[^\w]|_", " ", text).split()
    return [
        spelled
        for word in words
        if word not in FILLERS
        for spelled in SPELLED.get(word, word).split()
    ]


def engine_config(name: str) -> EngineConfig:
    base = None
    if name == WHISPER_BASE:
        base = str(whisper_base(RecognizerSettings().models_dir / "whisper-base"))
    return EngineConfig("tiny.en", cpu_threads=1, beam_size=5, whisper_base_folder=base)


def measure(name: str, clips: list[Clip]) -> dict[str, Any]:
    engine = load_engine(name, engine_config(name))
    engine.transcribe(read_audio(clips[0].wav), JobOptions(engine=name, language="en"))  # warm-up
    rows = []
    for clip in clips:
        audio = read_audio(clip.wav)
        started = time.perf_counter()
        transcript = engine.transcribe(audio, JobOptions(engine=name, language="en"))
        seconds = time.perf_counter() - started
        row = {
            "clip": clip.name,
            "source": clip.source,
            "audio_seconds": round(len(audio.frame_data) / (2 * audio.sample_rate), 2),
            "engine_seconds": round(seconds, 2),
            **counted(clip.text, transcript.text),
            "text": transcript.text,
        }
        rows.append(row)
        print(
            f"{LABELS[name]:12} {clip.name:44} WER {row['wer']:6.1%}  {seconds:5.1f} s", flush=True
        )
    return {"engine": name, "label": LABELS[name], **totals(rows), "clips": rows}


def counted(reference: str, text: str) -> dict[str, Any]:
    """The errors of `text` against `reference`, both normalised."""
    expected, heard = normalised(reference), normalised(text)
    errors = jiwer.process_words(" ".join(expected), " ".join(heard) or "")
    return {
        "words": len(expected),
        "substitutions": errors.substitutions,
        "deletions": errors.deletions,
        "insertions": errors.insertions,
        "wer": round(errors.wer, 4),
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    words = sum(row["words"] for row in rows)
    wrong = sum(row["substitutions"] + row["deletions"] + row["insertions"] for row in rows)
    audio_seconds = sum(row["audio_seconds"] for row in rows)
    return {
        "wer": round(wrong / words, 4),
        "words": words,
        "audio_seconds": round(audio_seconds, 1),
        "seconds_per_audio_second": round(
            sum(row["engine_seconds"] for row in rows) / audio_seconds, 3
        ),
    }


def rescored(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`results` with the stored texts counted again against the references."""
    references = {clip.name: clip.text for clip in corpus()}
    again = []
    for result in results:
        rows = [{**row, **counted(references[row["clip"]], row["text"])} for row in result["clips"]]
        again.append({**result, **totals(rows), "clips": rows})
    return again


def plot(results: list[dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [result["label"] for result in results]
    figure, (errors, times) = plt.subplots(1, 2, figsize=(9, 3.8))
    errors.bar(labels, [100 * result["wer"] for result in results], color="#4c72b0")
    errors.set_ylabel("word error rate (%)")
    errors.set_title("Errors on 15 real recordings")
    times.bar(labels, [result["seconds_per_audio_second"] for result in results], color="#dd8452")
    times.set_ylabel("engine seconds per audio second")
    times.set_title("Time (one thread)")
    for axes, key, form in (
        (errors, "wer", "{:.1%}"),
        (times, "seconds_per_audio_second", "{:.2f}"),
    ):
        for index, result in enumerate(results):
            value = result[key] * (100 if key == "wer" else 1)
            axes.annotate(form.format(result[key]), (index, value), ha="center", va="bottom")
    figure.tight_layout()
    figure.savefig(png, dpi=110)


def main(options: argparse.Namespace) -> None:
    out = RESULTS / "accuracy.json"
    if options.rescore:
        results = rescored(json.loads(out.read_text())["results"])
    else:
        clips = corpus()
        results = [measure(name, clips) for name in options.engines]
    for result in results:
        print(
            f"{result['label']:12} WER {result['wer']:.1%} on {result['words']} words,"
            f" {result['seconds_per_audio_second']:.3f} s per audio second"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    measured_on = json.loads(out.read_text())["machine"] if options.rescore else machine()
    out.write_text(json.dumps({"machine": measured_on, "results": results}, indent=2))
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out.relative_to(ROOT)} and {out.with_suffix('.png').relative_to(ROOT)}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument(
        "--rescore", action="store_true", help="count the stored texts again; decode nothing"
    )
    main(parser.parse_args())
