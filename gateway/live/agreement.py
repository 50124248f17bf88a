"""Local agreement for interim text: of the passes recognizing an utterance still under way, a
word is confirmed once two successive passes agree on it and on every word before it, or differ
only on a word or two that both follow with the same few words (the later pass's hearing is taken
for those). Confirmed words are never taken back, so the deltas sent from them only ever append; the utterance's final
text is the confirmed words followed by what the final pass heard after them."""

import difflib
import string

_EDGES = string.punctuation + "\u201c\u201d\u2018\u2019\u2026\u2014\u2013"
# Passes often keep hearing one hard word differently ("unyeared", "un-eared") while they agree
# on everything after it; waiting for them to agree on it held captions back for 6 s on the
# sonnets. A difference of at most this many words in either pass...
MISHEARD_WORDS = 2
# ...is passed over when the two passes agree on at least this many words right after it.
AGREED_AFTER_WORDS = 3


def _key(word: str) -> str:
    """How a word is compared between passes: Whisper changes case and punctuation as it hears
    more ("Hello?" then "hello,"), which is no disagreement about the word."""
    return word.strip(_EDGES).casefold()


class LocalAgreement:
    """The words of one utterance confirmed so far, from the interim passes in order."""

    def __init__(self) -> None:
        self.confirmed: list[str] = []
        self._previous: str | None = None

    def update(self, text: str) -> list[str]:
        """Take the next pass's text; the words it newly confirms (often none).

        Each pass is read after the confirmed words, found in it as the final text finds them:
        a later pass often hears a confirmed word otherwise ("dying", then "Diane"), and the
        words after it must still be confirmed as the speaker goes on."""
        previous, self._previous = self._previous, text
        if previous is None:
            return []
        before, now = self.rest_of(previous), self.rest_of(text)
        agreed = _agreed(before, now)
        fresh = now[:agreed]
        self.confirmed += fresh
        return fresh

    def rest_of(self, pass_text: str) -> list[str]:
        """The words of a pass (an interim or the final one) after the confirmed ones."""
        heard = pass_text.split()
        if not self.confirmed:
            return heard
        matcher = difflib.SequenceMatcher(
            None, self._confirmed_keys(), [_key(w) for w in heard], autojunk=False
        )
        blocks = [block for block in matcher.get_matching_blocks() if block.size]
        if not blocks:
            # The pass heard none of it (rare): the confirmed words stand for as many.
            return heard[len(self.confirmed) :]
        last = blocks[-1]
        # Confirmed words after the last match were misheard by one pass or the other: this
        # pass's words in their place are skipped, as many as there are.
        unmatched = len(self.confirmed) - (last.a + last.size)
        return heard[last.b + last.size + unmatched :]

    def final_text(self, final_text: str) -> str:
        return " ".join(self.confirmed + self.rest_of(final_text))

    def _confirmed_keys(self) -> list[str]:
        return [_key(word) for word in self.confirmed]


def _agreed(before: list[str], now: list[str]) -> int:
    """How many of the words in `now` the earlier pass `before` agrees with."""
    matcher = difflib.SequenceMatcher(
        None, [_key(w) for w in before], [_key(w) for w in now], autojunk=False
    )
    steps = matcher.get_opcodes()
    agreed = 0
    for number, (tag, start, end, now_start, now_end) in enumerate(steps):
        if tag == "equal":
            agreed = now_end
            continue
        following = steps[number + 1] if number + 1 < len(steps) else None
        passed_over = (
            end - start <= MISHEARD_WORDS
            and now_end - now_start <= MISHEARD_WORDS
            and following is not None
            and following[0] == "equal"
            and following[2] - following[1] >= AGREED_AFTER_WORDS
        )
        if not passed_over:
            break
    return agreed


def delta_text(already_sent: int, words: list[str]) -> str:
    """`words` as a delta after `already_sent` words: joined in order, deltas read as the text."""
    text = " ".join(words)
    return f" {text}" if already_sent and text else text
