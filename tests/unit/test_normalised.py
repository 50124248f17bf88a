"""The benchmarks' word-error-rate normalisation: formatting Whisper varies with context (digits,
contractions, British spellings) is not counted as an error; words are."""

from bench.accuracy import normalised


def test_formatting_is_set_aside() -> None:
    heard = normalised("I'm sure we'll walk 7 metres; they've organised it, haven't they?")
    assert " ".join(heard) == (
        "i am sure we will walk seven meters they have organized it have not they"
    )
    assert " ".join(normalised("Um, Mr. Smith can't come, OK?")) == "mister smith can not come okay"


def test_words_still_differ() -> None:
    assert normalised("water the plants on Sundays") != normalised("walker the plants on Sunday")
    # "'s" and "'d" are left as they are: "it's" may be "it is" or "it has".
    assert normalised("it's") == ["its"]
