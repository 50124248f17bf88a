"""The speaker library on real voices (tests/voices.py fetches them once per machine).

The transcripts here stand in for an engine's: a word every half second through each reference
turn, so the labels can be checked against who really spoke. The voices, the model and the
clustering are the real ones.
"""

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from recognizer.settings import RecognizerSettings
from recognizer.speaker_clusters import SpeakerCount
from recognizer.speaker_model import SpeakerModel, Voice, shifted_voices
from recognizer.speaker_turns import _split, label_speakers
from shared.transcripts import Segment, SpeakerTalk, Transcript, Word
from tests import voices as real


def transcript_of(recording: real.Recording, joined_turns: int = 1) -> Transcript:
    """A segment per reference turn (or per `joined_turns` turns), a word every 0.5 s, none
    where two speakers talk at once."""
    segments = []
    for first in range(0, len(recording.turns), joined_turns):
        turns = recording.turns[first : first + joined_turns]
        words = [
            # Words as the engines give them: without the space Whisper writes before each.
            Word(start=round(moment, 2), end=round(moment + 0.4, 2), word=turn.speaker)
            for turn in turns
            for moment in np.arange(turn.start, turn.end - 0.4, 0.5)
            if recording.speaker_at(moment + 0.2) == turn.speaker  # not where two talk at once
        ]
        segments.append(
            Segment(
                start=turns[0].start,
                end=turns[-1].end,
                text=" ".join(word.word for word in words),
                words=words,
            )
        )
    return Transcript(text="", language="en", segments=segments)


def word_speakers(transcript: Transcript) -> list[tuple[str, str | None]]:
    """(the word, which names its true speaker; the label given)."""
    return [(w.word.strip(), w.speaker) for s in transcript.segments for w in s.words]


def accuracy(transcript: Transcript) -> float:
    """The share of words whose label maps to their true speaker, one label per speaker."""
    pairs = Counter(word_speakers(transcript))
    best: dict[str | None, int] = {}
    used: set[str] = set()
    for (truth, label), number in pairs.most_common():
        if label not in best and truth not in used:
            best[label] = number
            used.add(truth)
    return sum(best.values()) / sum(pairs.values())


@pytest.fixture(scope="session")
def model() -> SpeakerModel:
    return SpeakerModel()


@pytest.fixture(scope="session")
def call() -> real.Recording:
    return real.call()


@pytest.fixture(scope="session")
def readers() -> dict[str, np.ndarray]:
    return real.readers()


@pytest.fixture(scope="session")
def mix(readers: dict[str, np.ndarray]) -> real.Recording:
    return real.mix(readers)


@pytest.fixture(scope="session")
def held_out() -> dict[str, np.ndarray]:
    return real.held_out()


@pytest.fixture(scope="session")
def mix_voices(model: SpeakerModel, mix: real.Recording) -> list[Voice]:
    return model.voices(mix.samples, transcript_of(mix).segments)


@pytest.fixture(scope="session")
def mix_voices_in_pieces(model: SpeakerModel, mix: real.Recording) -> list[Voice]:
    """Voices of the mix computed piece by piece (cut at quiet moments about every 25 s),
    each piece's words timed from its own start, then shifted back."""
    transcript = transcript_of(mix)
    cuts = [0]
    while len(mix.samples) - cuts[-1] > 30 * real.SAMPLE_RATE:
        cuts.append(real._quiet_cut(mix.samples, cuts[-1] + 25 * real.SAMPLE_RATE))
    cuts.append(len(mix.samples))
    voices: list[Voice] = []
    for start, end in itertools.pairwise(cuts):
        offset = start / real.SAMPLE_RATE
        inside = [
            Word(start=w.start - offset, end=w.end - offset, word=w.word)
            for s in transcript.segments
            for w in s.words
            if start / real.SAMPLE_RATE <= w.start and w.end <= end / real.SAMPLE_RATE
        ]
        segment = Segment(start=0, end=(end - start) / real.SAMPLE_RATE, text="", words=inside)
        voices += shifted_voices(model.voices(mix.samples[start:end], [segment]), offset)
    return voices


def test_a_real_call_has_two_speakers(model: SpeakerModel, call: real.Recording) -> None:
    transcript = transcript_of(call)
    labelled = label_speakers(transcript, model.voices(call.samples, transcript.segments))

    assert [entry.speaker for entry in labelled.speakers or []] == ["S1", "S2"]
    assert accuracy(labelled) >= 0.9


def test_four_real_voices_are_told_apart(mix: real.Recording, mix_voices: list[Voice]) -> None:
    labelled = label_speakers(transcript_of(mix), mix_voices)

    assert [entry.speaker for entry in labelled.speakers or []] == ["S1", "S2", "S3", "S4"]
    assert accuracy(labelled) >= 0.9
    assert sum(entry.segments for entry in labelled.speakers or []) == len(mix.turns)


# Two held-out voices taking turns of 2-5 s with 0.6 s gaps. While the cuts' silhouettes counted
# strays as clusters of their own, a cut that split one voice's few turns into strays scored
# best: the first came out as one speaker, the second as three.
SHORT_TURNS = [
    ("cards", "cmu", (4.0, 3.0, 4.5, 2.0, 3.5, 5.0, 2.5)),
    ("aligner", "cmu", (2.0, 3.5, 5.0, 2.5, 4.0, 3.0, 4.5)),
]


@pytest.mark.parametrize(("first", "second", "lengths"), SHORT_TURNS)
def test_two_voices_taking_short_turns_are_counted(
    model: SpeakerModel,
    held_out: dict[str, np.ndarray],
    first: str,
    second: str,
    lengths: tuple[float, ...],
) -> None:
    talk = real.mix(
        {first: held_out[first], second: held_out[second]}, turns=8, pause=0.6, lengths=lengths
    )
    transcript = transcript_of(talk)

    labelled = label_speakers(transcript, model.voices(talk.samples, transcript.segments))

    assert [entry.speaker for entry in labelled.speakers or []] == ["S1", "S2"]
    assert accuracy(labelled) >= 0.9


@pytest.mark.parametrize("speakers", [2, 3, 5])
def test_an_exact_count_is_obeyed(
    mix: real.Recording, mix_voices: list[Voice], speakers: int
) -> None:
    labelled = label_speakers(transcript_of(mix), mix_voices, SpeakerCount(exact=speakers))

    assert len(labelled.speakers or []) == speakers


def test_a_most_and_a_least_are_obeyed(mix: real.Recording, mix_voices: list[Voice]) -> None:
    transcript = transcript_of(mix)

    assert len(label_speakers(transcript, mix_voices, SpeakerCount(maximum=3)).speakers or []) == 3
    assert len(label_speakers(transcript, mix_voices, SpeakerCount(minimum=5)).speakers or []) == 5
    assert len(label_speakers(transcript, mix_voices, SpeakerCount(minimum=2)).speakers or []) == 4


def test_a_known_speaker_is_named(
    model: SpeakerModel,
    mix: real.Recording,
    mix_voices: list[Voice],
    readers: dict[str, np.ndarray],
    call: real.Recording,
) -> None:
    # 8 s of the Dickens reading that the mix does not use, and a voice that is not in the mix.
    reference = model.embed(readers["cities"][-8 * real.SAMPLE_RATE :])
    stranger = model.embed(call.samples[round(21.8 * 16_000) : round(28.4 * 16_000)])

    labelled = label_speakers(
        transcript_of(mix), mix_voices, known={"Dickens reader": reference, "Caller": stranger}
    )

    names = {truth: label or "" for truth, label in word_speakers(labelled)}
    assert names["cities"] == "Dickens reader"
    assert sorted(label for truth, label in names.items() if truth != "cities") == [
        "S1",
        "S2",
        "S3",
    ]
    assert "Caller" not in {entry.speaker for entry in labelled.speakers or []}


def test_a_segment_is_split_where_the_speaker_changes(
    mix: real.Recording, mix_voices: list[Voice]
) -> None:
    # Each segment holds two turns, so two speakers.
    transcript = transcript_of(mix, joined_turns=2)

    labelled = label_speakers(transcript, mix_voices)

    first, second = labelled.segments[0], labelled.segments[1]
    assert first.speaker != second.speaker
    # Split at the change of speaker, give or take a word.
    assert abs(second.start - mix.turns[1].start) <= 0.5
    assert Counter(w.word.strip() for w in first.words).most_common(1)[0][0] == mix.turns[0].speaker
    assert (
        Counter(w.word.strip() for w in second.words).most_common(1)[0][0] == mix.turns[1].speaker
    )
    assert first.text == " ".join(w.word for w in first.words)
    assert second.text == " ".join(w.word for w in second.words)
    assert first.start == transcript.segments[0].start
    assert second.start == second.words[0].start
    assert second.end == transcript.segments[0].end
    assert len(labelled.segments) >= len(mix.turns) - 1
    assert all(w.speaker == s.speaker for s in labelled.segments for w in s.words)


def _timed(words: list[str]) -> list[Word]:
    return [Word(start=n * 0.5, end=n * 0.5 + 0.4, word=word) for n, word in enumerate(words)]


def test_the_parts_of_a_split_segment_keep_its_text_as_written() -> None:
    # Whisper writes "$12.50" but times "$12" and ".50"; the quotes are outside every word.
    words = _timed(["It", "costs", "$12", ".50,", "she", "said.", "Yes."])
    segment = Segment(start=0, end=3.5, text='"It costs $12.50," she said. Yes.', words=words)

    parts = _split(segment, list(zip(words, [0, 0, 0, 0, 0, 0, 1], strict=True)))

    assert [(part.text, label) for part, label in parts] == [
        ('"It costs $12.50," she said.', 0),
        ("Yes.", 1),
    ]


def test_a_split_segment_whose_words_are_not_in_its_text_is_spaced_by_word() -> None:
    words = _timed(["I", "paid", "12", "dollars.", "Yes."])
    segment = Segment(start=0, end=2.5, text="I paid twelve dollars. Yes.", words=words)

    parts = _split(segment, list(zip(words, [0, 0, 0, 0, 1], strict=True)))

    assert [part.text for part, _ in parts] == ["I paid 12 dollars.", "Yes."]


def test_whole_and_in_pieces_give_the_same_labels(
    mix: real.Recording, mix_voices: list[Voice], mix_voices_in_pieces: list[Voice]
) -> None:
    transcript = transcript_of(mix)

    whole = word_speakers(label_speakers(transcript, mix_voices))
    in_pieces = word_speakers(label_speakers(transcript, mix_voices_in_pieces))

    same = sum(a == b for a, b in zip(whole, in_pieces, strict=True))
    assert same / len(whole) >= 0.98


def test_the_order_of_the_voices_does_not_matter(
    mix: real.Recording, mix_voices_in_pieces: list[Voice]
) -> None:
    transcript = transcript_of(mix)
    shuffled = list(mix_voices_in_pieces)
    np.random.default_rng(7).shuffle(shuffled)

    assert label_speakers(transcript, shuffled) == label_speakers(transcript, mix_voices_in_pieces)


def test_voices_are_shifted_to_the_recording() -> None:
    voice = Voice(start=1.0, end=2.5, embedding=(0.6, 0.8))

    assert shifted_voices([voice], 60.0) == [Voice(start=61.0, end=62.5, embedding=(0.6, 0.8))]


def test_without_voices_there_is_one_speaker() -> None:
    words = [Word(start=0.0, end=0.3, word=" Yes.")]
    transcript = Transcript(
        text="Yes.", language="en", segments=[Segment(start=0, end=0.3, text="Yes.", words=words)]
    )

    labelled = label_speakers(transcript, [])

    assert labelled.segments[0].speaker == labelled.segments[0].words[0].speaker == "S1"
    assert labelled.speakers == [SpeakerTalk(speaker="S1", talk_seconds=0.3, segments=1)]
    assert label_speakers(Transcript(text="", language="en"), []).speakers == []


def test_a_damaged_model_is_refused(tmp_path: Path, model: SpeakerModel) -> None:
    from recognizer.speaker_model import ONNX_FILE, SpeakerModelUnavailable, campplus_onnx

    good = campplus_onnx(RecognizerSettings().models_dir / "campplus")
    (tmp_path / ONNX_FILE).write_bytes(good.read_bytes()[:-1] + b"\0")
    (tmp_path / f"{ONNX_FILE}.sha256").write_text((good.parent / f"{ONNX_FILE}.sha256").read_text())

    with pytest.raises(SpeakerModelUnavailable, match="damaged"):
        SpeakerModel(tmp_path)
