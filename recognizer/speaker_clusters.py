"""Who is who among the voices of one recording: one clustering over all its voices (the count
of speakers found, or as asked), and the clusters that sound like a known speaker's reference."""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from recognizer.speaker_model import HOP_SECONDS, unit

MOST_SPEAKERS = 10
"""The most speakers looked for when the count is left open."""
ONE_SPEAKER_DISTANCE = 0.35
"""When even the last merge of the clustering joins voices closer than this on average
(cosine distance), they are all one speaker."""
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
KNOWN_SPEAKER_SIMILARITY = 0.5
"""A cluster takes a known speaker's name when its centre is at least this similar (cosine) to
the reference."""


@dataclass(frozen=True)
class SpeakerCount:
    exact: int | None = None
    minimum: int | None = None
    maximum: int | None = None


OPEN_COUNT = SpeakerCount()
"""No count asked for: as many speakers as the clustering finds."""


def centres(embeddings: np.ndarray, cluster_ids: np.ndarray, count: int) -> np.ndarray:
    sums = np.zeros((count, embeddings.shape[1]), np.float64)
    np.add.at(sums, cluster_ids, embeddings)
    return unit(sums)


def _strays(cluster_ids: np.ndarray, seconds_per_voice: float) -> set[int]:
    sizes = np.bincount(cluster_ids)
    share = min(FEW_VOICES_SHARE * len(cluster_ids), STRAY_SECONDS_AT_MOST / seconds_per_voice)
    few = max(share, FEW_VOICES_SECONDS / seconds_per_voice)
    return {k for k, size in enumerate(sizes) if size < few}


def _strays_joined(
    embeddings: np.ndarray, cluster_ids: np.ndarray, seconds_per_voice: float
) -> np.ndarray:
    """`cluster_ids` with the voices of stray clusters given to the nearest of the others (by
    cosine to its centre), numbered 0, 1, ... in the order of the clusters kept: the speakers that
    a cut stands for. All zeros when no more than one cluster is kept."""
    strays = _strays(cluster_ids, seconds_per_voice)
    kept = [k for k in range(int(cluster_ids.max()) + 1) if k not in strays]
    if len(kept) < 2:
        return np.zeros(len(cluster_ids), int)
    speaker_of = np.full(int(cluster_ids.max()) + 1, -1)
    speaker_of[kept] = np.arange(len(kept))
    speakers = speaker_of[cluster_ids]
    centres = unit(np.stack([embeddings[cluster_ids == k].mean(axis=0) for k in kept]))
    astray = speakers < 0
    speakers[astray] = np.argmax(embeddings[astray] @ centres.T, axis=1)
    joined: np.ndarray = speakers
    return joined


def _cut(tree: np.ndarray, clusters: int) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster

    return np.asarray(fcluster(tree, clusters, criterion="maxclust")) - 1


def _silhouette(distances: np.ndarray, cluster_ids: np.ndarray) -> float:
    """How much closer each voice is to its own cluster than to the next nearest (-1 to 1)."""
    clusters = int(cluster_ids.max()) + 1
    members = np.eye(clusters)[cluster_ids]
    sizes = members.sum(axis=0)
    sums = distances @ members
    own = sums[np.arange(len(cluster_ids)), cluster_ids] / np.maximum(sizes[cluster_ids] - 1, 1)
    others = np.where(members > 0, np.inf, sums / np.maximum(sizes, 1)).min(axis=1)
    scores = (others - own) / np.maximum(np.maximum(own, others), 1e-9)
    return float(np.where(sizes[cluster_ids] > 1, scores, 0).mean())


def cluster(embeddings: np.ndarray, count: SpeakerCount) -> np.ndarray:
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

    def speakers_in(cluster_ids: np.ndarray) -> list[int]:
        strays = _strays(cluster_ids, seconds_per_voice)
        return [k for k in range(cluster_ids.max() + 1) if k not in strays]

    def cut_into(wanted: int) -> np.ndarray:
        # The fewest clusters of which `wanted` are more than strays.
        for clusters in range(wanted, min(len(linked), 4 * wanted + 10) + 1):
            cluster_ids = _cut(tree, clusters)
            if len(speakers_in(cluster_ids)) >= wanted:
                return cluster_ids
        return _cut(tree, wanted)

    if count.exact is not None:
        cluster_ids = cut_into(max(1, min(count.exact, len(linked))))
    else:
        cluster_ids = np.zeros(len(linked), int)
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
                cluster_ids = min(
                    ((cut, score) for cut, score in scored if score >= good_enough),
                    key=lambda scored_cut: (int(scored_cut[0].max()), -scored_cut[1]),
                )[0]
        found = max(1, len(speakers_in(cluster_ids)))
        wanted = min(max(found, count.minimum or 1), most if most >= 1 else 1)
        if wanted != found:
            cluster_ids = cut_into(wanted)
    kept = speakers_in(cluster_ids) or list(range(int(cluster_ids.max()) + 1))
    centres = unit(np.stack([linked[cluster_ids == k].mean(axis=0) for k in kept]))
    for _ in range(REFINING_ROUNDS):
        nearest = np.argmax(embeddings @ centres.T, axis=1)
        centres = unit(
            np.stack([embeddings[nearest == k].mean(axis=0) for k in np.unique(nearest)])
        )
    return np.asarray(np.argmax(embeddings @ centres.T, axis=1))


def named(centres: np.ndarray, known: Mapping[str, tuple[float, ...]]) -> dict[int, str]:
    """Clusters that sound like a known speaker's reference, each name given at most once."""
    if not known:
        return {}
    from scipy.optimize import linear_sum_assignment

    names = sorted(known)
    references = unit(np.array([known[name] for name in names], np.float32))
    similarity = centres @ references.T
    rows, columns = linear_sum_assignment(-similarity)
    return {
        int(row): names[column]
        for row, column in zip(rows, columns, strict=True)
        if similarity[row, column] >= KNOWN_SPEAKER_SIMILARITY
    }
