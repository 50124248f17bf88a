"""How often the speaker count comes out right when it is left open, over many short
conversations of real voices that the tests and `bench.speakers` do not cluster otherwise.

    python -m bench.speaker_counts        # make bench SCENARIO=speaker_counts

Every group of two, three and four of the held-out voices in tests/voices.py takes 6-16 turns
of 2-5 s with 0.6 s gaps, the turn lengths in four orders (220 recordings, 17-66 s). The
transcript stands in for an engine's, as in the unit tests: a word every half second through
each reference turn, so that what is measured is the clustering, not the recognizer. Prints, for
each true count, how many recordings got it, and the counts found; writes
`bench/results/speaker_counts.json`.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any

import numpy as np

from bench.run import RESULTS, machine
from bench.speakers import accuracy
from recognizer.speaker_model import SpeakerModel
from recognizer.speaker_turns import label_speakers
from shared.transcripts import Segment, Transcript, Word
from tests import voices as real

TURNS = (6, 8, 10, 12, 16)
ORDERS = (0, 2, 4, 6)
"""Each order starts the cycle of turn lengths at another of them."""


def words_every_half_second(recording: real.Recording) -> Transcript:
    """One segment per reference turn, a word every 0.5 s of it, each named after its speaker."""
    segments = []
    for turn in recording.turns:
        words = [
            Word(start=round(moment, 2), end=round(moment + 0.4, 2), word=turn.speaker)
            for moment in np.arange(turn.start, turn.end - 0.4, 0.5)
        ]
        text = " ".join(word.word for word in words)
        segments.append(Segment(start=turn.start, end=turn.end, text=text, words=words))
    return Transcript(text="", language="en", segments=segments)


def main() -> None:
    voices = real.held_out()
    model = SpeakerModel()
    lengths = real.SHORT_TURN_SECONDS
    runs: list[dict[str, Any]] = []
    for size in (2, 3, 4):
        for names in itertools.combinations(sorted(voices), size):
            for turns, order in itertools.product(TURNS, ORDERS):
                recording = real.mix(
                    {name: voices[name] for name in names},
                    turns=turns,
                    pause=0.6,
                    lengths=lengths[order:] + lengths[:order],
                    name="+".join(names),
                )
                transcript = words_every_half_second(recording)
                labelled = label_speakers(
                    transcript, model.voices(recording.samples, transcript.segments)
                )
                runs.append(
                    {
                        "recording": recording.name,
                        "turns": turns,
                        "order": order,
                        "seconds": round(recording.seconds, 1),
                        "speakers": size,
                        "speakers_found": len(labelled.speakers or []),
                        "accuracy": round(accuracy(labelled, recording), 4),
                    }
                )
    summary = {}
    for size in (2, 3, 4):
        found = Counter(run["speakers_found"] for run in runs if run["speakers"] == size)
        summary[size] = {
            "recordings": sum(found.values()),
            "right": found[size],
            "fewer": sum(n for count, n in found.items() if count < size),
            "more": sum(n for count, n in found.items() if count > size),
            "found": dict(sorted(found.items())),
        }
        print(json.dumps({"speakers": size, **summary[size]}))
    mean = float(np.mean([run["accuracy"] for run in runs]))
    print(json.dumps({"mean_accuracy": round(mean, 4)}))
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "summary": summary, "mean_accuracy": mean, "runs": runs}
    (RESULTS / "speaker_counts.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / 'speaker_counts.json'}")


if __name__ == "__main__":
    main()
