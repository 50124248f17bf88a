"""Subtitle formats, read back with the parsers other tools use."""

import io
from datetime import timedelta

import srt
import webvtt

from shared.transcripts import Segment, Transcript, joined, to_srt, to_vtt

SEGMENTS = [
    Segment(start=0.0, end=2.5, text="Please send the quarterly report"),
    Segment(start=2.5, end=2.5, text="zero length is no cue"),
    Segment(start=2.6, end=3661.042, text=" to the finance team before Friday. "),
    Segment(start=3700.0, end=3701.0, text="   "),
]


def test_srt_is_valid_subrip_with_the_segment_times() -> None:
    cues = list(srt.parse(to_srt(SEGMENTS)))
    assert [cue.index for cue in cues] == [1, 2]
    assert cues[0].start == timedelta(0)
    assert cues[0].end == timedelta(seconds=2.5)
    assert cues[1].end == timedelta(hours=1, minutes=1, seconds=1, milliseconds=42)
    assert cues[1].content == "to the finance team before Friday."


def test_vtt_is_valid_webvtt_with_the_segment_times() -> None:
    cues = webvtt.from_buffer(io.StringIO(to_vtt(SEGMENTS))).captions
    assert [(cue.start, cue.end) for cue in cues] == [
        ("00:00:00.000", "00:00:02.500"),
        ("00:00:02.600", "01:01:01.042"),
    ]
    assert cues[0].text == "Please send the quarterly report"


def test_no_segments_still_make_valid_files() -> None:
    assert list(srt.parse(to_srt([]))) == []
    assert webvtt.from_buffer(io.StringIO(to_vtt([]))).captions == []


def piece_in(language: str, text: str, start: float) -> Transcript:
    segment = Segment(start=start, end=start + 2, text=text)
    return Transcript(text=text, language=language, segments=[segment])


def test_segments_say_their_language_only_when_the_pieces_were_heard_in_different_ones() -> None:
    german, english = piece_in("de", "Guten Morgen", 0), piece_in("en", "Good morning", 30)
    mixed = joined([(german, 30), (english, 30), (english, 30)], "en")
    alike = joined([(english, 30), (english, 30)], "en")
    assert [segment.language for segment in mixed.segments] == ["de", "en", "en"]
    assert mixed.language == "en"
    assert [segment.language for segment in alike.segments] == [None, None]
