"""How far a Whisper transcript can be trusted, and the repairs that make it trustworthier.

Pure functions over segments and the audio's samples (16 kHz mono float32), so each rule is
tested on its own: a confidence per segment and per transcript, flags for likely invented text,
repetition loops cut, text without any word dropped, and speech the decoder skipped found by
voice-activity detection on short windows and decoded again on its own (`recover`).
"""

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.transcripts import Segment, Transcript, Word, shifted_segment, word_texts

SAMPLE_RATE = 16_000

# Flags a segment may carry (see Segment.flags).
REPETITION = "repetition"
NO_SPEECH = "no_speech"
COMPRESSION = "compression"
OUTSIDE_SPEECH = "outside_speech"
RECOVERED = "recovered"

# Whisper's own thresholds: above them it judges a window silent, or its decoding failed.
NO_SPEECH_PROBABILITY = 0.6
COMPRESSION_RATIO = 2.4
# A segment with less than this share of its time heard as speech lies outside speech.
SPEECH_SHARE = 0.2
# Below this confidence, a segment that also lies outside speech is dropped as invented.
INVENTED_CONFIDENCE = 0.5
# A phrase of up to MAX_LOOP_WORDS words said this many times in a row is a loop (one word
# needs one more: "no, no, no" is said by people).
LOOP_REPEATS = 3
MAX_LOOP_WORDS = 8

# Voice-activity detection on short windows finds turns that a pass over the whole audio
# misses (a quiet voice right after a loud one): windows of WINDOW_SECONDS, every HOP_SECONDS.
WINDOW_SECONDS = 5.0
HOP_SECONDS = 2.5
# Speech left without words for at least this long is decoded again on its own.
SKIPPED_SECONDS = 0.8
# People say two to three words a second; a stretch of speech with far fewer was not heard.
MIN_WORDS_PER_SECOND = 0.5
# Whisper's word times are rough: a word is taken to cover this much more on either side, and
# at most MAX_WORD_SECONDS.
WORD_SLACK_SECONDS = 0.3
MAX_WORD_SECONDS = 1.0
# Skipped stretches this close, with no word between them, are decoded together.
JOIN_SECONDS = 1.0
RECOVERY_PAD_SECONDS = 0.25

Span = tuple[float, float]
# Decodes the audio from `start` to `end` seconds alone; segments timed from `start`.
Decode = Callable[[float, float], list[Segment]]

_WORDLIKE = re.compile(r"\w")


def segment_confidence(segment: Segment) -> float | None:
    """The mean of the segment's word probabilities, else exp of its mean token log-probability."""
    rated = [word.probability for word in segment.words if word.probability is not None]
    if rated:
        return sum(rated) / len(rated)
    if segment.avg_logprob is None:
        return None
    return math.exp(segment.avg_logprob)


def overall_confidence(segments: Sequence[Segment]) -> float | None:
    """The segments' confidences, weighted by how long each segment lasts."""
    timed = [
        (max(segment.end - segment.start, 0.0), segment.confidence)
        for segment in segments
        if segment.confidence is not None
    ]
    total = sum(seconds for seconds, _ in timed)
    if total <= 0:
        return None
    return sum(seconds * confidence for seconds, confidence in timed) / total


def _token(text: str) -> str:
    return re.sub(r"[^\w']", "", text.lower())


def looped(tokens: Sequence[str]) -> list[bool]:
    """Which of `tokens` repeat a phrase already said LOOP_REPEATS times in a row or more
    (True: cut it); the first saying of each phrase is kept."""
    cut = [False] * len(tokens)
    start = 0
    while start < len(tokens):
        advanced = False
        for size in range(1, MAX_LOOP_WORDS + 1):
            phrase = tokens[start : start + size]
            if len(phrase) < size or not any(phrase):
                break
            repeats = 1
            while tokens[start + repeats * size : start + (repeats + 1) * size] == phrase:
                repeats += 1
            if repeats >= LOOP_REPEATS + (size == 1):
                for index in range(start + size, start + repeats * size):
                    cut[index] = True
                start += repeats * size
                advanced = True
                break
        if not advanced:
            start += 1
    return cut


def cut_loops(segments: Sequence[Segment]) -> list[Segment]:
    """`segments` with repetition loops cut, across segment boundaries too; a segment that lost
    words is flagged `repetition`, one that lost all of them is gone."""
    pieces: list[Sequence[Word | str]] = [
        list(segment.words) if segment.words else segment.text.split() for segment in segments
    ]
    owners = [(number, index) for number, piece in enumerate(pieces) for index in range(len(piece))]
    tokens = [_token(_text(pieces[number][index])) for number, index in owners]
    cut = {owner for owner, is_cut in zip(owners, looped(tokens), strict=True) if is_cut}
    if not cut:
        return list(segments)
    kept: list[Segment] = []
    for number, segment in enumerate(segments):
        piece = pieces[number]
        remaining = [item for index, item in enumerate(piece) if (number, index) not in cut]
        if len(remaining) == len(piece):
            kept.append(segment)
        elif remaining:
            words = [item for item in remaining if isinstance(item, Word)]
            written = word_texts(segment)
            text = (
                " ".join(_text(item) for item in remaining)
                if written is None
                else "".join(w for i, w in enumerate(written) if (number, i) not in cut).strip()
            )
            kept.append(
                segment.model_copy(
                    update={
                        "text": text,
                        "words": words,
                        "end": words[-1].end if words else segment.end,
                        "flags": _flagged(segment.flags, REPETITION),
                    }
                )
            )
    return kept


def _text(item: Word | str) -> str:
    return item.word if isinstance(item, Word) else item


def _flagged(flags: Sequence[str], flag: str) -> list[str]:
    return list(flags) if flag in flags else [*flags, flag]


def _overlap(span: Span, spans: Sequence[Span]) -> float:
    start, end = span
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)


def judged(segment: Segment, speech: Sequence[Span]) -> Segment:
    """`segment` with its confidence and the flags its own figures and the speech heard earn."""
    flags = list(segment.flags)
    if segment.no_speech_prob is not None and segment.no_speech_prob >= NO_SPEECH_PROBABILITY:
        flags = _flagged(flags, NO_SPEECH)
    if segment.compression_ratio is not None and segment.compression_ratio > COMPRESSION_RATIO:
        flags = _flagged(flags, COMPRESSION)
    seconds = segment.end - segment.start
    if _overlap((segment.start, segment.end), speech) < SPEECH_SHARE * max(seconds, 0.1):
        flags = _flagged(flags, OUTSIDE_SPEECH)
    return segment.model_copy(update={"confidence": segment_confidence(segment), "flags": flags})


def invented(segment: Segment) -> bool:
    """Text with no word in it, or text where nobody was heard that the engine doubted too."""
    if not _WORDLIKE.search(segment.text):
        return True
    if OUTSIDE_SPEECH not in segment.flags:
        return False
    doubted = segment.confidence is not None and segment.confidence < INVENTED_CONFIDENCE
    return doubted or NO_SPEECH in segment.flags


def reviewed(segments: Sequence[Segment], speech: Sequence[Span]) -> list[Segment]:
    """`segments` judged, loops cut, and what looks invented dropped."""
    judged_segments = [judged(segment, speech) for segment in cut_loops(segments)]
    return [segment for segment in judged_segments if not invented(segment)]


def speech_spans(samples: Any) -> list[Span]:
    """Where voice-activity detection hears speech, run on overlapping short windows (seconds)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=300, speech_pad_ms=100)
    window, hop = int(WINDOW_SECONDS * SAMPLE_RATE), int(HOP_SECONDS * SAMPLE_RATE)
    spans: list[Span] = []
    for offset in range(0, max(len(samples) - window + hop, 1), hop):
        for found in get_speech_timestamps(samples[offset : offset + window], options):
            spans.append(
                ((offset + found["start"]) / SAMPLE_RATE, (offset + found["end"]) / SAMPLE_RATE)
            )
    return merged(spans)


def merged(spans: Sequence[Span]) -> list[Span]:
    result: list[Span] = []
    for start, end in sorted(spans):
        if result and start <= result[-1][1]:
            result[-1] = (result[-1][0], max(result[-1][1], end))
        else:
            result.append((start, end))
    return result


def _word_spans(segment: Segment) -> list[Span]:
    if segment.words:
        return [(word.start, word.end) for word in segment.words]
    count = len(segment.text.split())
    step = (segment.end - segment.start) / max(count, 1)
    return [(segment.start + step * n, segment.start + step * (n + 1)) for n in range(count)]


def skipped(speech: Sequence[Span], segments: Sequence[Segment]) -> list[Span]:
    """Stretches of `speech` the transcript has no words for, at least SKIPPED_SECONDS long.

    Two signs, as Whisper shows a skip in two ways: speech between words (a word is taken to
    last at most MAX_WORD_SECONDS: Whisper stretches the last word before a skipped turn over
    it), and stretches of speech with far fewer words than people say."""
    spans = [span for segment in segments for span in _word_spans(segment)]
    middles = sorted((start + end) / 2 for start, end in spans)
    covered = merged(
        [
            (start - WORD_SLACK_SECONDS, min(end, start + MAX_WORD_SECONDS) + WORD_SLACK_SECONDS)
            for start, end in spans
        ]
    )
    candidates = [gap for span in speech for gap in _gaps(span, covered)]
    candidates += [
        (start, end)
        for start, end in speech
        if sum(start <= middle < end for middle in middles) < MIN_WORDS_PER_SECOND * (end - start)
    ]
    stretches: list[Span] = []
    for start, end in merged(candidates):
        joins = stretches and start - stretches[-1][1] < JOIN_SECONDS
        if joins and not any(stretches[-1][1] <= middle < start for middle in middles):
            stretches[-1] = (stretches[-1][0], end)
        else:
            stretches.append((start, end))
    return [(start, end) for start, end in stretches if end - start >= SKIPPED_SECONDS]


def _gaps(span: Span, covered: Sequence[Span]) -> list[Span]:
    """The parts of `span` outside every one of `covered` (sorted, not overlapping)."""
    start, end = span
    gaps: list[Span] = []
    cursor = start
    for a, b in covered:
        if b <= cursor or a >= end:
            continue
        if a > cursor:
            gaps.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


@dataclass(frozen=True)
class Recovery:
    segments: list[Segment]
    recovered_seconds: float


def recover(
    segments: Sequence[Segment], speech: Sequence[Span], decode: Decode, duration: float
) -> Recovery:
    """Decode again, alone, each stretch of speech left without words; put the words it yields
    in place, flagged `recovered`."""
    found: list[Segment] = []
    seconds = 0.0
    for start, end in skipped(speech, segments):
        begin, finish = (
            max(start - RECOVERY_PAD_SECONDS, 0.0),
            min(end + RECOVERY_PAD_SECONDS, duration),
        )
        heard = [
            shifted_segment(segment, begin)
            for segment in reviewed(decode(begin, finish), [(0.0, finish - begin)])
        ]
        if heard:
            found.extend(
                segment.model_copy(update={"flags": _flagged(segment.flags, RECOVERED)})
                for segment in heard
            )
            seconds += end - start
    if not found:
        return Recovery(list(segments), 0.0)
    return Recovery(sorted([*segments, *found], key=lambda segment: segment.start), seconds)


def trusted(
    transcript: Transcript, speech: Sequence[Span], decode: Decode, duration: float
) -> Transcript:
    """`transcript` reviewed, its skipped speech recovered, its text and confidence made anew."""
    recovery = recover(reviewed(transcript.segments, speech), speech, decode, duration)
    segments = recovery.segments
    return transcript.model_copy(
        update={
            "segments": segments,
            "text": " ".join(segment.text for segment in segments),
            "confidence": overall_confidence(segments),
            "recovered_seconds": round(recovery.recovered_seconds, 2),
        }
    )


# Language detection over the whole recording: up to DETECTION_WINDOWS windows of Whisper's
# 30 s, spread evenly over the speech, each voting with its probabilities for every language.
DETECTION_WINDOWS = 5
# A piece of a long recording is decoded in its own language, not the recording's, only when
# its own windows are this sure of it: one clearly in another language, not one that wavers.
OWN_LANGUAGE_WINDOWS = 2
SURE_OF_OWN_LANGUAGE = 0.7
DETECTION_SECONDS = 30.0


@dataclass(frozen=True)
class Vote:
    """One window's language probabilities, weighted by the seconds of speech it holds."""

    seconds: float
    probabilities: Sequence[tuple[str, float]]


@dataclass(frozen=True)
class Heard:
    language: str
    probability: float


def detection_windows(speech: Sequence[Span], windows: int = DETECTION_WINDOWS) -> list[list[Span]]:
    """Up to `windows` stretches of DETECTION_SECONDS of speech (each a list of spans), spread
    evenly over all the speech in `speech`."""
    total = sum(end - start for start, end in speech)
    if total <= 0:
        return []
    count = max(1, min(windows, math.ceil(total / DETECTION_SECONDS)))
    length = min(DETECTION_SECONDS, total)
    # Where each window starts, in seconds of speech counted from the first.
    starts = [(total - length) * n / max(count - 1, 1) for n in range(count)]
    chosen: list[list[Span]] = []
    for begin in starts:
        window: list[Span] = []
        elapsed = 0.0
        for start, end in speech:
            lo = max(begin, elapsed)
            hi = min(begin + length, elapsed + end - start)
            if hi > lo:
                window.append((start + lo - elapsed, start + hi - elapsed))
            elapsed += end - start
        chosen.append(window)
    return chosen


def majority_language(votes: Sequence[Vote]) -> Heard | None:
    """The language most of the speech is in: each window's probabilities summed, weighted by its
    speech; the probability is that language's weighted mean."""
    total = sum(vote.seconds for vote in votes)
    if total <= 0:
        return None
    summed: dict[str, float] = {}
    for vote in votes:
        for language, probability in vote.probabilities:
            summed[language] = summed.get(language, 0.0) + vote.seconds * probability
    language = max(summed, key=lambda name: summed[name])
    return Heard(language, round(summed[language] / total, 4))


def spread(count: int, wanted: int = DETECTION_WINDOWS) -> list[int]:
    """Up to `wanted` indices out of `count`, spread evenly from the first to the last."""
    if count <= wanted:
        return list(range(count))
    return sorted({round(n * (count - 1) / (wanted - 1)) for n in range(wanted)})
