"""Who spoke when: labels on every word and segment of a transcript, from the voices of the whole
recording (`speaker_model`) and one clustering over them (`speaker_clusters`).

Synchronous and CPU-bound, like the engines: voices are computed in the recognizer's slot
processes where each piece's audio is, and `label_speakers` runs wherever the pieces are joined.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from recognizer.speaker_clusters import OPEN_COUNT, SpeakerCount, centres, cluster, named
from recognizer.speaker_model import FRAMES_PER_SECOND, Voice, unit
from shared.transcripts import Segment, SpeakerTalk, Transcript, Word, word_texts

SHORTEST_TURN_SECONDS = 0.5
"""Within a segment, a run of words of one speaker shorter than this joins its neighbours."""


class _Timeline:
    """Who speaks when, from the clustered voices: every 10 ms, how strongly each cluster's
    voices cover that moment. A voice counts less the further the moment lies from its middle:
    a window that reaches into the next speaker's turn holds both voices."""

    def __init__(self, voices: Sequence[Voice], cluster_ids: np.ndarray) -> None:
        starts = np.array([voice.start for voice in voices])
        ends = np.array([voice.end for voice in voices])
        self.middles = (starts + ends) / 2
        self.cluster_ids = cluster_ids
        self.origin = float(starts.min())
        self.frames = round((float(ends.max()) - self.origin) * FRAMES_PER_SECOND) + 1
        clusters = int(cluster_ids.max()) + 1
        # Every frame of every voice at once: its index, its cluster and its weight.
        firsts, pasts = self._frames(starts), self._frames(ends)
        lengths = np.maximum(pasts - firsts, 0)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        frames = np.repeat(firsts, lengths) + offsets
        moments = (frames + 0.5) / FRAMES_PER_SECOND + self.origin
        halves = np.repeat(np.maximum((ends - starts) / 2, 1e-3), lengths)
        weights = np.clip(1 - np.abs(moments - np.repeat(self.middles, lengths)) / halves, 0, 1)
        cover = np.bincount(
            frames * clusters + np.repeat(cluster_ids, lengths),
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
            chosen[index] = self.cluster_ids[int(np.argmin(np.abs(self.middles - middle)))]
        return [int(cluster_id) for cluster_id in chosen]


def _smoothed(words: Sequence[Word], cluster_ids: list[int]) -> list[int]:
    """`cluster_ids` of a segment's words with runs shorter than SHORTEST_TURN_SECONDS given to
    the longer neighbouring run: a window across a change of speaker blurs its edges."""
    cluster_ids = list(cluster_ids)
    while True:
        runs: list[tuple[int, int]] = []  # (first word, past the last word)
        for index, cluster_id in enumerate(cluster_ids):
            if runs and cluster_ids[runs[-1][0]] == cluster_id:
                runs[-1] = (runs[-1][0], index + 1)
            else:
                runs.append((index, index + 1))
        if len(runs) < 2:
            return cluster_ids

        def seconds(run: tuple[int, int]) -> float:
            return words[run[1] - 1].end - words[run[0]].start

        shortest = min(range(len(runs)), key=lambda n: (seconds(runs[n]), n))
        if seconds(runs[shortest]) >= SHORTEST_TURN_SECONDS:
            return cluster_ids
        neighbours = [runs[n] for n in (shortest - 1, shortest + 1) if 0 <= n < len(runs)]
        donor = max(neighbours, key=seconds)
        first, past = runs[shortest]
        cluster_ids[first:past] = [cluster_ids[donor[0]]] * (past - first)


def _split(segment: Segment, words: list[tuple[Word, int]]) -> list[tuple[Segment, int]]:
    """`segment` cut where its words' speaker changes."""
    runs: list[list[tuple[Word, int]]] = []
    for word, cluster_id in words:
        if runs and runs[-1][-1][1] == cluster_id:
            runs[-1].append((word, cluster_id))
        else:
            runs.append([(word, cluster_id)])
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
    count: SpeakerCount = OPEN_COUNT,
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
        return _with_speaker_labels(
            transcript, [(segment, 0) for segment in transcript.segments], {}
        )
    embeddings = unit(np.array([voice.embedding for voice in ordered], np.float32))
    cluster_ids = cluster(embeddings, count)
    names = named(centres(embeddings, cluster_ids, int(cluster_ids.max()) + 1), known or {})

    timeline = _Timeline(ordered, cluster_ids)
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
    return _with_speaker_labels(transcript, labelled, names)


def _with_speaker_labels(
    transcript: Transcript, labelled: list[tuple[Segment, int]], names: Mapping[int, str]
) -> Transcript:
    """`transcript` with `labelled` segments: clusters named, or S1, S2, ... in order of first
    appearance, on each segment and its words, and who spoke how long."""
    speaker_of: dict[int, str] = dict(names)
    for _, cluster_id in labelled:
        if cluster_id not in speaker_of:
            speaker_of[cluster_id] = f"S{sum(1 for k in speaker_of if k not in names) + 1}"
    segments = [
        segment.model_copy(
            update={
                "speaker": speaker_of[cluster_id],
                "words": [
                    w.model_copy(update={"speaker": speaker_of[cluster_id]}) for w in segment.words
                ],
            }
        )
        for segment, cluster_id in labelled
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
