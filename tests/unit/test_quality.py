"""The trust rules of recognizer/quality.py, on made-up segments (the engine lies outside them)."""

import math

import pytest

from recognizer import quality
from shared.transcripts import Segment, Transcript, Word


def timed_words(text: str, start: float, probability: float = 0.9) -> list[Word]:
    return [
        Word(start=start + 0.4 * n, end=start + 0.4 * n + 0.35, word=word, probability=probability)
        for n, word in enumerate(text.split())
    ]


def segment(text: str, start: float, **fields: object) -> Segment:
    words = timed_words(text, start)
    return Segment(start=start, end=words[-1].end, text=text, words=words, **fields)


def never_decode(start: float, end: float) -> list[Segment]:
    raise AssertionError(f"nothing should be decoded again, asked for {start}-{end}")


def test_a_loop_across_segments_is_cut_to_its_first_saying() -> None:
    segments = [
        segment("Thank you for watching.", 0.0),
        segment("Thank you for watching.", 2.0),
        segment("Thank you for watching.", 4.0),
        segment("Thank you for watching.", 6.0),
        segment("See you soon.", 8.0),
    ]
    kept = quality.cut_loops(segments)
    assert [s.text for s in kept] == ["Thank you for watching.", "See you soon."]


def test_a_loop_inside_one_segment_is_cut_and_flagged() -> None:
    looping = segment("we went to the the the the the the the market", 0.0)
    (kept,) = quality.cut_loops([looping])
    assert kept.text == "we went to the market"
    assert [w.word for w in kept.words] == ["we", "went", "to", "the", "market"]
    assert kept.flags == [quality.REPETITION]


def test_a_segment_with_a_loop_cut_keeps_the_rest_of_its_text_as_written() -> None:
    # Whisper writes "$12.50" but times "$12" and ".50".
    text = "It costs $12.50 and and and and and and and more."
    words = timed_words(text.replace("$12.50", "$12 .50"), 0.0)
    looping = Segment(start=0.0, end=words[-1].end, text=text, words=words)
    (kept,) = quality.cut_loops([looping])
    assert kept.text == "It costs $12.50 and more."


def test_phrases_people_repeat_are_kept() -> None:
    said = segment("no, no, no, I said it was very very good", 0.0)
    assert quality.cut_loops([said]) == [said]


def test_a_loop_without_word_times_is_cut_from_the_text() -> None:
    looping = Segment(start=0.0, end=9.0, text="I know. I know. I know. I know. I know. Fine.")
    (kept,) = quality.cut_loops([looping])
    assert kept.text == "I know. Fine."


def test_confidence_is_the_mean_word_probability_else_the_token_probability() -> None:
    words = [*timed_words("quite sure", 0.0, 0.9), *timed_words("unsure", 1.0, 0.3)]
    assert quality.segment_confidence(
        Segment(start=0, end=2, text="quite sure unsure", words=words)
    ) == pytest.approx(0.7)
    assert quality.segment_confidence(
        Segment(start=0, end=2, text="x", avg_logprob=-0.5)
    ) == pytest.approx(math.exp(-0.5))


def test_the_transcript_confidence_weighs_segments_by_duration() -> None:
    long_sure = Segment(start=0, end=9, text="a", confidence=0.9)
    short_unsure = Segment(start=9, end=10, text="b", confidence=0.4)
    assert quality.overall_confidence([long_sure, short_unsure]) == pytest.approx(0.85)


def test_punctuation_alone_is_no_words() -> None:
    dot = Segment(start=0.0, end=30.0, text=".", avg_logprob=-0.8, no_speech_prob=0.3)
    assert quality.reviewed([dot], speech=[]) == []


def test_doubtful_text_where_nobody_spoke_is_dropped_and_sure_text_kept_but_flagged() -> None:
    doubtful = segment("Thanks for watching", 10.0).model_copy(
        update={"words": timed_words("Thanks for watching", 10.0, probability=0.2)}
    )
    judged_silent = segment("Bye now", 15.0, no_speech_prob=0.7)
    sure = segment("Hello there", 20.0, no_speech_prob=0.1, compression_ratio=2.9)
    heard = segment("Good morning", 1.0, no_speech_prob=0.7)
    kept = quality.reviewed([heard, doubtful, judged_silent, sure], speech=[(0.0, 5.0)])
    assert [(s.text, s.flags) for s in kept] == [
        ("Good morning", [quality.NO_SPEECH]),
        ("Hello there", [quality.COMPRESSION, quality.OUTSIDE_SPEECH]),
    ]
    assert kept[1].confidence == pytest.approx(0.9)


def test_speech_left_without_words_is_decoded_again_and_put_in_place() -> None:
    first = segment("how are you today", 0.0)  # words until 1.55 s
    second = segment("see you later", 8.0)
    asked: list[tuple[float, float]] = []

    def decode(start: float, end: float) -> list[Segment]:
        asked.append((start, end))
        return [segment("I have a cold", 0.3)]

    speech = [(0.0, 1.6), (2.2, 4.6), (8.0, 9.2)]
    transcript = Transcript(text="", language="en", segments=[first, second])
    trusted = quality.trusted(transcript, speech, decode, duration=10.0)
    assert [(round(a, 2), round(b, 2)) for a, b in asked] == [(1.95, 4.85)]
    assert trusted.text == "how are you today I have a cold see you later"
    recovered = trusted.segments[1]
    assert recovered.flags == [quality.RECOVERED]
    assert recovered.start == pytest.approx(2.25)
    assert recovered.words[0].start == pytest.approx(2.25)
    assert trusted.recovered_seconds == pytest.approx(2.4)


def test_speech_covered_by_words_is_not_decoded_again() -> None:
    said = segment("one two three four five", 0.0)
    transcript = Transcript(text=said.text, language="en", segments=[said])
    trusted = quality.trusted(transcript, [(0.0, 2.0)], never_decode, duration=3.0)
    assert trusted.text == "one two three four five"
    assert trusted.recovered_seconds == 0.0


def test_a_recovered_stretch_that_yields_nothing_adds_nothing() -> None:
    transcript = Transcript(text="", language="en", segments=[])
    trusted = quality.trusted(transcript, [(1.0, 3.0)], lambda _s, _e: [], duration=5.0)
    assert trusted.segments == []
    assert trusted.recovered_seconds == 0.0


def test_detection_windows_are_spread_over_all_the_speech() -> None:
    speech = [(0.0, 60.0), (70.0, 130.0), (140.0, 200.0)]  # three minutes of speech
    windows = quality.detection_windows(speech, windows=3)
    assert windows == [[(0.0, 30.0)], [(85.0, 115.0)], [(170.0, 200.0)]]


def test_a_detection_window_joins_short_stretches_of_speech() -> None:
    speech = [(1.0, 11.0), (20.0, 30.0)]
    assert quality.detection_windows(speech) == [[(1.0, 11.0), (20.0, 30.0)]]
    assert quality.detection_windows([]) == []


def test_the_language_of_most_of_the_speech_wins() -> None:
    votes = [
        quality.Vote(30.0, [("en", 0.95), ("de", 0.04)]),
        quality.Vote(30.0, [("de", 0.9), ("en", 0.05)]),
        quality.Vote(30.0, [("de", 0.8), ("nl", 0.15)]),
    ]
    heard = quality.majority_language(votes)
    assert heard is not None
    assert heard.language == "de"
    assert heard.probability == pytest.approx(0.58)
    assert quality.majority_language([]) is None


def test_pieces_for_detection_are_spread_from_first_to_last() -> None:
    assert quality.spread(3) == [0, 1, 2]
    assert quality.spread(33) == [0, 8, 16, 24, 32]
