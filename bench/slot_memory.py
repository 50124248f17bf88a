"""Where a slot's memory goes while it decodes: the peak resident size above the loaded model
of one recognition, and of its parts, on 12 s, 60 s (the pipeline's pieces) and 10 minutes of
speech (a stretch decoded whole, as with a raised STT_PIECE_SECONDS). The `*_unblocked`
figures put faster-whisper's own spectrogram back, the one computed for the whole stretch at
once (recognizer/spectrogram.py says why it was replaced).

    python -m bench.slot_memory                 # the figures of docs/performance.md (tiny.en)
    python -m bench.slot_memory --model base    # Whisper base (from var/models)

Each figure comes from a process of its own: the engine is loaded as a slot loads it (one
thread) and warmed on the short piece, the heap is trimmed as a slot trims it after each
request, then one operation runs while a thread samples the resident size every 2 ms. The
pieces are espeak-ng speech of the GPL-3 text. Writes `bench/results/slot-memory.json`.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from faster_whisper.audio import pad_or_trim
from faster_whisper.feature_extractor import FeatureExtractor

from bench.run import RESULTS, machine
from recognizer import quality
from recognizer.engines import EngineConfig, FasterWhisperEngine, read_audio
from recognizer.engines.faster_whisper import float_samples
from recognizer.settings import RecognizerSettings
from recognizer.weights import whisper_base
from shared.jobs.options import JobOptions

OPERATIONS = (
    "recognition",
    "recognition_unblocked",
    "spectrogram",
    "spectrogram_unblocked",
    "encoder",
    "voice_activity",
)
PIECE_SECONDS = (12, 60, 600)
TEXT = Path("/usr/share/common-licenses/GPL-3")


def speech_pieces(folder: Path) -> dict[int, Path]:
    """Pieces of PIECE_SECONDS of espeak-ng speech, as 16 kHz mono WAV."""
    spoken = folder / "spoken.wav"
    text = TEXT.read_text()[:10_000]
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(spoken), text], check=True)
    pieces = {}
    for seconds in PIECE_SECONDS:
        pieces[seconds] = folder / f"piece-{seconds}.wav"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(spoken),
             "-t", str(seconds), "-ar", "16000", "-ac", "1", str(pieces[seconds])],
            check=True,
        )  # fmt: skip
    return pieces


def measure_one(model: str, operation: str, piece: Path, warm: Path) -> float:
    """In this process: MB above the warmed engine at the peak of `operation` on `piece`."""
    name = model
    if model == "base":
        name = str(whisper_base(RecognizerSettings().models_dir / "whisper-base"))
    engine = FasterWhisperEngine(EngineConfig(name, cpu_threads=1, beam_size=5))
    english = JobOptions(engine="faster-whisper", language="en")
    engine.transcribe(read_audio(warm), english)
    audio = read_audio(piece)
    samples = float_samples(audio)
    whisper = engine._model
    unblocked = FeatureExtractor(**whisper.feat_kwargs)
    if operation == "recognition_unblocked":
        whisper.feature_extractor = unblocked
    # The piece's first window as faster-whisper pads it; the model cuts that padding.
    first_window = pad_or_trim(
        whisper.feature_extractor(samples)[:, : whisper.feature_extractor.nb_max_frames]
    )
    run: Callable[[], object] = {
        "recognition": lambda: engine.transcribe(audio, english),
        "recognition_unblocked": lambda: engine.transcribe(audio, english),
        "spectrogram": lambda: whisper.feature_extractor(samples),
        "spectrogram_unblocked": lambda: unblocked(samples),
        "encoder": lambda: whisper.encode(first_window),
        "voice_activity": lambda: quality.speech_spans(samples),
    }[operation]
    process = psutil.Process()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    time.sleep(0.2)
    before = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    run()
    time.sleep(0.05)
    done.set()
    sampler.join()
    return (peak - before) / 2**20


def main(options: argparse.Namespace) -> None:
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as temporary:
        pieces = speech_pieces(Path(temporary))
        for seconds, piece in pieces.items():
            for operation in OPERATIONS:
                answer = subprocess.run(
                    [sys.executable, "-m", "bench.slot_memory", "--model", options.model,
                     "--one", operation, str(piece), str(pieces[PIECE_SECONDS[0]])],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                megabytes = float(answer.stdout.split()[-1])
                figures.setdefault(f"{seconds}s", {})[operation] = round(megabytes, 1)
                print(f"{seconds:3d} s  {operation:21} +{megabytes:6.1f} MB", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "slot-memory.json"
    report = {"machine": machine(), "model": options.model, "mb_above_loaded": figures}
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en", choices=("tiny.en", "base"))
    parser.add_argument("--one", nargs=3, metavar=("OPERATION", "PIECE", "WARM"), help="internal")
    arguments = parser.parse_args()
    if arguments.one:
        operation, piece, warm = arguments.one
        print(measure_one(arguments.model, operation, Path(piece), Path(warm)))
    else:
        main(arguments)
