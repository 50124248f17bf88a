"""Timed transcripts: segments with start and end seconds, words where the engine gives them,
and the subtitle formats made from them."""

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field


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


def shifted(transcript: Transcript, offset_seconds: float) -> Transcript:
    """`transcript` of a piece, timed from the start of the recording the piece was cut from."""
    if not offset_seconds:
        return transcript

    def shift_word(word: Word) -> Word:
        return word.model_copy(
            update={"start": word.start + offset_seconds, "end": word.end + offset_seconds}
        )

    segments = [
        segment.model_copy(
            update={
                "start": segment.start + offset_seconds,
                "end": segment.end + offset_seconds,
                "words": [shift_word(word) for word in segment.words],
            }
        )
        for segment in transcript.segments
    ]
    return transcript.model_copy(update={"segments": segments})


def joined(pieces: Sequence[tuple[Transcript, float]], language: str) -> Transcript:
    """One transcript of consecutive pieces, each given with its length in seconds; the
    confidence is the pieces' own, weighted by how long each piece lasts."""
    rated = [(seconds, t.confidence) for t, seconds in pieces if t.confidence is not None]
    total = sum(seconds for seconds, _ in rated)
    return Transcript(
        text=" ".join(t.text for t, _ in pieces if t.text),
        language=language,
        segments=[segment for t, _ in pieces for segment in t.segments],
        confidence=sum(s * c for s, c in rated) / total if total > 0 else None,
    )


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
