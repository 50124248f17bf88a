"""Sequential against batched decoding, on pieces cut at pauses as the transcoder cuts them.

    python -m bench.decoding [--minutes 10] [--piece-seconds 60 300] [--models tiny.en base]

Speaks the GPL-3 text (Debian ships it in /usr/share/common-licenses) with espeak-ng, cuts it
with the transcoder's own `plan_pieces`, and decodes every piece in this process with one thread
per model: tiny.en and Whisper base, each sequentially and with the batched pipeline. Prints
time, word error rate against the spoken text and its deletions, and writes
`bench/results/decoding.json`. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import machine
from recognizer.engines import EngineConfig, load_engines, read_audio
from recognizer.settings import RecognizerSettings
from recognizer.weights import whisper_base
from scripts.stack import ROOT
from shared.jobs.options import JobOptions
from transcoder.convert import to_wav
from transcoder.pieces import plan_pieces, write_piece

RESULTS = ROOT / "bench" / "results"
TEXT = Path("/usr/share/common-licenses/GPL-3")
WORDS_PER_MINUTE = 150


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()


def errors(reference: list[str], hypothesis: list[str]) -> dict[str, int]:
    """Substitutions, deletions and insertions of `hypothesis` against `reference`."""
    counts = {"substitutions": 0, "deletions": 0, "insertions": 0}
    matcher = difflib.SequenceMatcher(a=reference, b=hypothesis, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "replace":
            common = min(i2 - i1, j2 - j1)
            counts["substitutions"] += common
            counts["deletions"] += (i2 - i1) - common
            counts["insertions"] += (j2 - j1) - common
        elif tag == "delete":
            counts["deletions"] += i2 - i1
        elif tag == "insert":
            counts["insertions"] += j2 - j1
    return counts


def spoken_text(minutes: float) -> str:
    text = " ".join(TEXT.read_text().split())
    return " ".join(text.split()[: int(minutes * WORDS_PER_MINUTE)])


def speak(text: str, folder: Path) -> Path:
    raw, wav = folder / "spoken.wav", folder / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    to_wav(raw, wav, timeout_seconds=600, max_seconds=4 * 3600)
    return wav


def cut(wav: Path, piece_seconds: float, folder: Path) -> list[Path]:
    paths = []
    for piece in plan_pieces(wav, piece_seconds):
        paths.append(folder / f"piece-{piece_seconds:g}-{piece.index}.wav")
        write_piece(wav, piece, paths[-1])
    return paths


def main(options: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="stt-decoding-"))
    text = spoken_text(options.minutes)
    wav = speak(text, folder)
    reference = words(text)
    models = {"tiny.en": "tiny.en"}
    if "base" in options.models:
        models["base"] = str(whisper_base(RecognizerSettings().models_dir / "whisper-base"))
    results: list[dict[str, Any]] = []
    for piece_seconds in options.piece_seconds:
        paths = cut(wav, piece_seconds, folder)
        print(f"pieces of at most {piece_seconds:g} s: {len(paths)}", flush=True)
        for name in options.models:
            for batch_size in (0, 8):
                config = EngineConfig(
                    models[name], cpu_threads=1, beam_size=5, batch_size=batch_size
                )
                engine = load_engines(("faster-whisper",), config)["faster-whisper"]
                english = JobOptions(engine="faster-whisper", language="en")
                engine.transcribe(read_audio(paths[0]), english)  # warm-up
                started = time.perf_counter()
                heard = [engine.transcribe(read_audio(path), english).text for path in paths]
                seconds = time.perf_counter() - started
                counts = errors(reference, words(" ".join(heard)))
                result = {
                    "piece_seconds": piece_seconds,
                    "pieces": len(paths),
                    "model": name,
                    "decoding": f"batched {batch_size}" if batch_size else "sequential",
                    "seconds": round(seconds, 1),
                    "wer": round(sum(counts.values()) / len(reference), 4),
                    **counts,
                    "words": len(reference),
                }
                results.append(result)
                print(result, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / options.name
    out.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--piece-seconds", type=float, nargs="+", default=[60, 300])
    parser.add_argument(
        "--models", nargs="+", default=["tiny.en", "base"], choices=["tiny.en", "base"]
    )
    parser.add_argument("--name", default="decoding.json")
    main(parser.parse_args())
