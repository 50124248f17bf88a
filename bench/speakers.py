"""Speaker labels on real voices: how much speech goes to the right speaker, whether the right
number of speakers is found without a hint, whole and in pieces, and what labelling costs next
to recognition with the default engine (Whisper base).

    python -m bench.speakers                  # the figures of docs/performance.md (make bench SCENARIO=speakers)
    python -m bench.speakers --piece-seconds 20

Recordings (fetched once into ~/.cache/stt-test-speech by tests/voices.py, never
installed): pyannote's sample, a real two-person phone call with reference turns; a mix of
turns of four real readers and speakers; and, from four other real voices (`held_out` in
tests/voices.py), two pairs taking turns of 2-5 s with 0.6 s gaps and a mix of all four. Each
is recognized whole, and cut at pauses into pieces that are recognized one by one with voices
computed per piece by two speaker models in turn (as two recognizers would), shifted, and
clustered once. For each, the number of speakers found without a count against the true
number, and the accuracy: the share of word time whose label maps to the reference speaker,
under the best one-to-one mapping of labels to speakers. Prints a table of both at the end and
writes `bench/results/speakers.json` and `speakers.png`. Other load on the machine skews the
times; the ratios within one run hold better.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.run import RESULTS, machine
from recognizer.engines import Engine, EngineConfig, load_engines, read_audio
from recognizer.settings import RecognizerSettings
from recognizer.speaker_clusters import SpeakerCount
from recognizer.speaker_model import SpeakerModel, Voice, shifted_voices
from recognizer.speaker_turns import label_speakers
from recognizer.weights import whisper_base
from shared.jobs.options import JobOptions
from shared.transcripts import Transcript, joined, shifted
from tests import voices as real
from transcoder.pieces import plan_pieces, write_piece

ENGLISH = JobOptions(engine="faster-whisper", language="en")
HOURS_OF_VOICES = 3.0


def accuracy(transcript: Transcript, recording: real.Recording) -> float:
    """The share of word time labelled as its reference speaker, under the best one-to-one
    mapping of labels to reference speakers."""
    from scipy.optimize import linear_sum_assignment

    overlap: dict[tuple[str, str], float] = defaultdict(float)
    total = 0.0
    for segment in transcript.segments:
        for word in segment.words or []:
            truth = recording.speaker_at((word.start + word.end) / 2)
            if truth is None or word.speaker is None:
                continue
            overlap[(word.speaker, truth)] += word.end - word.start
            total += word.end - word.start
    labels = sorted({label for label, _ in overlap})
    truths = sorted({truth for _, truth in overlap})
    if not total:
        return 0.0
    matrix = np.array([[overlap[(label, truth)] for truth in truths] for label in labels])
    rows, columns = linear_sum_assignment(-matrix)
    return float(matrix[rows, columns].sum() / total)


def agreement(first: Transcript, second: Transcript) -> float:
    """The share of the first transcript's word time whose label, mapped one-to-one onto the
    second's, is the label the second gives at the same moment."""
    reference = real.Recording(
        "labels",
        np.zeros(0, np.float32),
        tuple(
            real.Turn(word.start, word.end, word.speaker or "")
            for segment in second.segments
            for word in segment.words
        ),
    )
    return accuracy(first, reference)


def held_out_recordings() -> list[real.Recording]:
    """Conversations of voices that the first two recordings do not hold: two pairs taking
    short turns, and all four in a rotation of short turns."""
    voices = real.held_out()

    def of(*names: str, turns: int) -> real.Recording:
        return real.mix(
            {name: voices[name] for name in names},
            turns=turns,
            pause=0.6,
            lengths=real.SHORT_TURN_SECONDS,
            name="+".join(names),
        )

    return [
        of("cards", "cmu", turns=10),
        of("aligner", "libritts", turns=10),
        of("aligner", "cards", "cmu", "libritts", turns=16),
    ]


def counts_table(runs: Sequence[dict[str, Any]]) -> str:
    """The speakers found without a count against the true number, and the accuracy, as a
    Markdown table."""
    lines = [
        "| recording | seconds | speakers | found, whole / in pieces | right word time, whole"
        " / in pieces | right word time, count given |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        whole, pieces = run["whole"], run["pieces"]
        lines.append(
            f"| {run['recording']} | {run['seconds']:.0f} | {run['speakers']}"
            f" | {whole['speakers_found']} / {pieces['speakers_found']}"
            f" | {100 * whole['accuracy']:.1f} % / {100 * pieces['accuracy']:.1f} %"
            f" | {100 * whole['accuracy_told_count']:.1f} % |"
        )
    return "\n".join(lines)


def timed_cpu(work: Any, *arguments: Any) -> tuple[Any, float]:
    started = time.process_time()
    result = work(*arguments)
    return result, time.process_time() - started


def recognized_whole(
    engine: Engine, model: SpeakerModel, recording: real.Recording, folder: Path
) -> tuple[Transcript, list[Voice], float, float]:
    wav = real.write_wav(recording.samples, folder / f"{recording.name}.wav")
    transcript, recognizing = timed_cpu(engine.transcribe, read_audio(wav), "en")
    voices, embedding = timed_cpu(model.voices, recording.samples, transcript.segments)
    return transcript, voices, recognizing, embedding


def recognized_in_pieces(
    engine: Engine,
    models: Sequence[SpeakerModel],
    recording: real.Recording,
    piece_seconds: float,
    folder: Path,
) -> tuple[Transcript, list[Voice], int]:
    wav = real.write_wav(recording.samples, folder / f"{recording.name}.wav")
    transcripts: list[tuple[Transcript, float]] = []
    voices: list[Voice] = []
    pieces = plan_pieces(wav, piece_seconds)
    for piece in pieces:
        path = folder / f"{recording.name}-{piece.index}.wav"
        write_piece(wav, piece, path)
        transcript = engine.transcribe(read_audio(path), ENGLISH)
        samples = recording.samples[piece.start_frame : piece.start_frame + piece.frames]
        model = models[piece.index % len(models)]
        voices += shifted_voices(model.voices(samples, transcript.segments), piece.offset_seconds)
        transcripts.append((shifted(transcript, piece.offset_seconds), piece.seconds))
    return joined(transcripts, "en"), voices, len(pieces)


def hours_of_voices(transcript: Transcript, voices: list[Voice], seconds: float) -> dict[str, Any]:
    """`label_speakers` on HOURS_OF_VOICES of voices (one recording's, repeated)."""
    copies = int(HOURS_OF_VOICES * 3600 / seconds) + 1
    long_voices = [v for n in range(copies) for v in shifted_voices(voices, n * seconds)]
    long_transcript = joined(
        [(shifted(transcript, n * seconds), seconds) for n in range(copies)], "en"
    )
    started = time.perf_counter()
    labelled = label_speakers(long_transcript, long_voices)
    return {
        "hours": round(copies * seconds / 3600, 2),
        "voices": len(long_voices),
        "seconds": round(time.perf_counter() - started, 2),
        "speakers_found": len(labelled.speakers or []),
    }


def memory_probe(wav: Path) -> None:
    """Run in a fresh process: resident memory with Whisper base loaded and used, then with the
    speaker model loaded and used as well."""

    def rss_mb() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20

    config = EngineConfig(str(whisper_base(RecognizerSettings().models_dir / "whisper-base")), 1, 5)
    engine = load_engines(("faster-whisper",), config)["faster-whisper"]
    transcript = engine.transcribe(read_audio(wav), ENGLISH)
    with_whisper = rss_mb()
    model = SpeakerModel()
    model.voices(real.decoded(wav), transcript.segments)
    print(json.dumps({"with_whisper_mb": round(with_whisper), "with_speakers_mb": round(rss_mb())}))


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["recordings"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5))
    names = [run["recording"] for run in runs]
    stacked = [name.replace("+", "\n+ ") for name in names]
    x = np.arange(len(names))
    left.bar(x - 0.2, [100 * run["whole"]["accuracy"] for run in runs], 0.4, label="whole")
    left.bar(x + 0.2, [100 * run["pieces"]["accuracy"] for run in runs], 0.4, label="in pieces")
    left.axhline(90, color="grey", linestyle="--", linewidth=1)
    left.set_xticks(
        x,
        [
            f"{n}\n{r['speakers']} speakers,\nfound {r['whole']['speakers_found']}"
            f" / {r['pieces']['speakers_found']}"
            for n, r in zip(stacked, runs, strict=True)
        ],
        fontsize=7,
    )
    left.set_ylabel("speech time to the right speaker (%)")
    left.set_ylim(0, 100)
    left.legend(loc="lower right")
    right.bar(x, [100 * run["cost_ratio"] for run in runs], 0.5, color="tab:green")
    right.axhline(25, color="grey", linestyle="--", linewidth=1)
    right.set_xticks(x, stacked, fontsize=7)
    right.set_ylabel("labelling CPU time / recognition CPU time (%)")
    figure.suptitle("Speaker labels on real voices (CAM++ voices, own clustering)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(options: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="stt-speakers-"))
    recordings = [real.call(), real.mix(real.readers()), *held_out_recordings()]
    config = EngineConfig(str(whisper_base(RecognizerSettings().models_dir / "whisper-base")), 1, 5)
    engine = load_engines(("faster-whisper",), config)["faster-whisper"]
    models = [SpeakerModel(), SpeakerModel()]
    label_speakers(Transcript(text="", language="en"), [Voice(0, 1, (1.0, 0.0))])  # imports scipy
    runs: list[dict[str, Any]] = []
    for recording in recordings:
        speakers = len({turn.speaker for turn in recording.turns})
        transcript, voices, recognizing, embedding = recognized_whole(
            engine, models[0], recording, folder
        )
        started = time.process_time()
        whole = label_speakers(transcript, voices)
        clustering = time.process_time() - started
        told = label_speakers(transcript, voices, SpeakerCount(exact=speakers))
        in_pieces, piece_voices, pieces = recognized_in_pieces(
            engine, models, recording, options.piece_seconds[recording.name], folder
        )
        by_pieces = label_speakers(in_pieces, piece_voices)
        reordered = label_speakers(in_pieces, piece_voices[::-1])
        run = {
            "recording": recording.name,
            "seconds": round(recording.seconds, 1),
            "speakers": speakers,
            "whole": {
                "accuracy": round(accuracy(whole, recording), 4),
                "speakers_found": len(whole.speakers or []),
                "accuracy_told_count": round(accuracy(told, recording), 4),
            },
            "pieces": {
                "pieces": pieces,
                "accuracy": round(accuracy(by_pieces, recording), 4),
                "speakers_found": len(by_pieces.speakers or []),
                "same_labels_in_any_order": reordered == by_pieces,
            },
            "recognition_cpu_seconds": round(recognizing, 2),
            "voices_cpu_seconds": round(embedding, 2),
            "clustering_cpu_seconds": round(clustering, 3),
            "cost_ratio": round((embedding + clustering) / recognizing, 3),
            "labelling_cpu_seconds_per_audio_minute": round(
                60 * (embedding + clustering) / recording.seconds, 2
            ),
        }
        print(json.dumps(run), flush=True)
        runs.append(run)
        if recording.name.startswith("mix"):
            long = hours_of_voices(transcript, voices, recording.seconds)
            print(json.dumps({"label_speakers_on_hours": long}), flush=True)
    probe = subprocess.run(
        [sys.executable, "-m", "bench.speakers", "--memory-probe",
         str(real.write_wav(recordings[-1].samples, folder / "probe.wav"))],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    memory = json.loads(probe.stdout.strip().splitlines()[-1])
    memory["speaker_model_mb"] = memory["with_speakers_mb"] - memory["with_whisper_mb"]
    report = {
        "machine": machine(),
        "recordings": runs,
        "label_speakers_on_hours": long,
        "memory": memory,
    }
    print(json.dumps(memory))
    print(counts_table(runs))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speakers.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, RESULTS / "speakers.png")
    print(f"wrote {RESULTS / 'speakers.json'} and speakers.png")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--piece-seconds",
        type=float,
        default=None,
        help="piece length for every recording (default: 30 s for the four readers' mix,"
        " 12 s for the others)",
    )
    parser.add_argument("--memory-probe", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    fixed = options.piece_seconds
    options.piece_seconds = defaultdict(lambda: fixed or 12.0, {"mix4": fixed or 30.0})
    return options


if __name__ == "__main__":
    chosen = arguments()
    if chosen.memory_probe:
        memory_probe(chosen.memory_probe)
    else:
        main(chosen)
