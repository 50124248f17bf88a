"""Timed transcripts: segments with start and end seconds, words where the engine gives them,
and the subtitle formats made from them."""

from collections.abc import Iterable

from pydantic import BaseModel, Field


class Word(BaseModel):
    start: float
    end: float
    word: str
    probability: float | None = None


class Segment(BaseModel):
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    temperature: float | None = Field(None, description="The sampling temperature Whisper used.")


class Transcript(BaseModel):
    text: str
    language: str
    segments: list[Segment] = Field(default_factory=list)
    confidence: float | None = Field(
        None, description="The engine's own probability that the text is right, from 0 to 1."
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
    blocks = [
        f"{number}\n{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}\n{cue.text.strip()}\n"
        for number, cue in enumerate(_cues(segments), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(segments: Iterable[Segment]) -> str:
    blocks = [
        f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{cue.text.strip()}\n"
        for cue in _cues(segments)
    ]
    return "\n".join(["WEBVTT\n", *blocks])
