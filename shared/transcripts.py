"""Timed transcripts: segments with start and end seconds, words where the engine gives them,
and the subtitle formats made from them."""

import itertools
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from shared.provenance import Provenance


class Word(BaseModel):
    start: float
    end: float
    word: str
    probability: float | None = None
    speaker: str | None = None


class Segment(BaseModel):
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    temperature: float | None = Field(None, description="The sampling temperature Whisper used.")
    speaker: str | None = None
    language: str | None = Field(
        None,
        description="The language the segment was heard in, given when the pieces of a long"
        " recording were heard in different languages.",
    )
    # How far the segment can be trusted (recognizer/quality.py).
    confidence: float | None = Field(
        None,
        description="How sure the engine was of this segment's words, from 0 to 1: the mean of"
        " its word probabilities, else the exponent of its mean token log-probability.",
    )
    compression_ratio: float | None = Field(
        None, description="How well the text compresses (gzip); loops of text compress too well."
    )
    flags: list[str] = Field(
        default_factory=list,
        description="Why the segment may be wrong: `repetition` (a loop was cut from it),"
        " `no_speech` (the engine judged the audio likely silent), `compression` (its text"
        " compresses suspiciously well), `outside_speech` (voice-activity detection heard no"
        " speech there); `recovered` marks speech the first decoding skipped, decoded again alone.",
    )


class SpeakerTalk(BaseModel):
    """How much one speaker said: `S1`, `S2`, ... in order of first appearance, or a known
    speaker's name."""

    speaker: str
    talk_seconds: float
    segments: int


class Transcript(BaseModel):
    text: str
    language: str
    segments: list[Segment] = Field(default_factory=list)
    confidence: float | None = Field(
        None, description="The engine's own probability that the text is right, from 0 to 1."
    )
    speakers: list[SpeakerTalk] | None = Field(
        None, description="Who spoke and for how long; None when speakers were not labelled."
    )
    provenance: Provenance | None = Field(None, description="What produced the transcript.")
    # Trust in the transcript as a whole (recognizer/quality.py).
    language_probability: float | None = Field(
        None, description="How sure the language detection was of `language`, from 0 to 1."
    )
    recovered_seconds: float = Field(
        0.0, description="Seconds of speech the first decoding skipped and a second one recovered."
    )


def word_texts(segment: Segment) -> list[str] | None:
    """Each of `segment`'s words as its text writes it, with what follows up to the next word
    (spaces, punctuation), and the first with what comes before it: joined, they give the text
    back. None if a word is not in the text, in order. Whisper writes "$12.50" but times "$12"
    and ".50", so joining the words themselves would not spell it."""
    starts = []
    read = 0
    for word in segment.words:
        at = segment.text.find(word.word.strip(), read)
        if at < 0:
            return None
        starts.append(at)
        read = at + len(word.word.strip())
    if not starts:
        return None
    cuts = [0, *starts[1:], len(segment.text)]
    return [segment.text[start:end] for start, end in itertools.pairwise(cuts)]


def shifted(transcript: Transcript, offset_seconds: float) -> Transcript:
    """`transcript` of a piece, timed from the start of the recording the piece was cut from."""
    if not offset_seconds:
        return transcript
    segments = [shifted_segment(segment, offset_seconds) for segment in transcript.segments]
    return transcript.model_copy(update={"segments": segments})


def shifted_segment(segment: Segment, offset_seconds: float) -> Segment:
    """`segment` with it and its words `offset_seconds` later."""
    return segment.model_copy(
        update={
            "start": segment.start + offset_seconds,
            "end": segment.end + offset_seconds,
            "words": [
                word.model_copy(
                    update={"start": word.start + offset_seconds, "end": word.end + offset_seconds}
                )
                for word in segment.words
            ],
        }
    )


def joined(pieces: Sequence[tuple[Transcript, float]], language: str) -> Transcript:
    """One transcript of consecutive pieces, each given with its length in seconds; the
    confidence is the pieces' own, weighted by how long each piece lasts. When the pieces were
    heard in different languages, each segment says its own."""
    if len({t.language for t, _ in pieces}) > 1:
        pieces = [
            (t.model_copy(update={"segments": [_in(s, t.language) for s in t.segments]}), seconds)
            for t, seconds in pieces
        ]
    rated = [(seconds, t.confidence) for t, seconds in pieces if t.confidence is not None]
    total = sum(seconds for seconds, _ in rated)
    return Transcript(
        text=" ".join(t.text for t, _ in pieces if t.text),
        language=language,
        segments=[segment for t, _ in pieces for segment in t.segments],
        confidence=sum(s * c for s, c in rated) / total if total > 0 else None,
        # The pieces of one job share its engine and decoding settings.
        provenance=next((t.provenance for t, _ in pieces if t.provenance), None),
        recovered_seconds=sum(t.recovered_seconds for t, _ in pieces),
    )


def _in(segment: Segment, language: str) -> Segment:
    return segment.model_copy(update={"language": language})


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cues(segments: Iterable[Segment]) -> list[Segment]:
    # Subtitle cues need text and a positive duration.
    return [segment for segment in segments if segment.text.strip() and segment.end > segment.start]


def to_srt(segments: Iterable[Segment]) -> str:
    """SubRip cues; a labelled segment's text starts with its speaker ("S1: ...")."""
    blocks = [
        f"{number}\n{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}\n{_said(cue)}\n"
        for number, cue in enumerate(_cues(segments), start=1)
    ]
    return "\n".join(blocks)


def _said(cue: Segment) -> str:
    return f"{cue.speaker}: {cue.text.strip()}" if cue.speaker else cue.text.strip()


def to_vtt(segments: Iterable[Segment]) -> str:
    """WebVTT cues; a labelled segment's text is in a voice span (`<v S1>...</v>`)."""
    blocks = [
        f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{_voiced(cue)}\n"
        for cue in _cues(segments)
    ]
    return "\n".join(["WEBVTT\n", *blocks])


def _voiced(cue: Segment) -> str:
    text = _vtt_escaped(cue.text.strip())
    return f"<v {_vtt_escaped(cue.speaker)}>{text}</v>" if cue.speaker else text


def _vtt_escaped(text: str) -> str:
    # A cue's text is markup: "&" and "<" would start an entity or a tag, ">" ends a voice name.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_turns(segments: Iterable[Segment]) -> str:
    """The text by turns, one paragraph each time the speaker changes: "S1: ..."."""
    turns: list[tuple[str | None, list[str]]] = []
    for segment in segments:
        text = segment.text.strip()
        if not text:
            continue
        if turns and turns[-1][0] == segment.speaker:
            turns[-1][1].append(text)
        else:
            turns.append((segment.speaker, [text]))
    paragraphs = [
        f"{speaker}: {' '.join(texts)}" if speaker else " ".join(texts) for speaker, texts in turns
    ]
    return "\n\n".join(paragraphs)
