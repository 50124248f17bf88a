"""Interim text of live sessions: local agreement between passes, and the rules that keep
interim passes from holding anything up (one out at a time, given up when unanswered, none when
the session must skip them, late and stale answers ignored)."""

from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
from pymongo.errors import AutoReconnect

from gateway.backlog import Backlog
from gateway.live.agreement import LocalAgreement
from gateway.live.interim import ANSWER_WITHIN_SECONDS, DELTA, InterimText, PassAudio, Skip
from gateway.live.job import interim_notes
from gateway.services import Services
from gateway.settings import GatewaySettings
from shared.events import Event, InterimReady, InterimRecognized, MediaUploaded
from shared.jobs.models import JobStatus, Progress
from shared.jobs.options import JobOptions
from shared.media import MediaPaths
from shared.media_store import FolderStore
from tests.fakes import FakeBroker, FakeFleet, FakeJobs, a_job

JOB = "0123456789abcdef0123456789abcdef"
AUDIO = PassAudio("AAAA", JobOptions(engine="faster-whisper", language="en"))


def test_words_are_confirmed_once_two_passes_in_a_row_agree() -> None:
    agreement = LocalAgreement()
    assert agreement.update("Hello?") == []
    assert agreement.update("Hello, how are") == ["Hello,"]
    assert agreement.update("hello how are you") == ["how", "are"]
    # A pass that hears a confirmed word otherwise still confirms the words after it; the
    # confirmed words stand as they were sent.
    assert agreement.update("Yellow how are you doing") == ["you"]
    assert agreement.update("hello how are you doing today") == ["doing"]
    assert agreement.update("hello how are you doing today.") == ["today."]
    assert agreement.confirmed == ["Hello,", "how", "are", "you", "doing", "today."]


def test_a_confirmed_word_heard_otherwise_later_does_not_stop_the_captions() -> None:
    # The phone call in the pyannote-audio wheel: "dying" is confirmed, then every later pass
    # hears "Diane", and the words after it must still come while the speaker goes on.
    agreement = LocalAgreement()
    agreement.update("I heard a beep. This is dying")
    agreement.update("I heard a beep. This is dying in")
    assert agreement.confirmed[-1] == "dying"
    assert agreement.update("I heard a beep. This is Diane in New Jersey.") == ["in"]
    assert agreement.update("I heard a beep. This is Diane in New Jersey. And I'm Sheila") == [
        "New", "Jersey.",
    ]  # fmt: skip
    assert agreement.final_text("I heard a beep. This is Diane in New Jersey. And I'm Sheila.") == (
        "I heard a beep. This is dying in New Jersey. And I'm Sheila."
    )


def test_a_word_or_two_heard_otherwise_does_not_hold_back_the_words_agreed_after_them() -> None:
    agreement = LocalAgreement()
    agreement.update("For where is she so fair whose")
    agreement.update("For where is she so fair whose unyeared")
    assert agreement.confirmed[-1] == "whose"
    # Each pass hears the hard word otherwise; they agree on three words after it.
    assert agreement.update("For where is she so fair whose un-eared womb disdains the") == []
    assert agreement.update("For where is she so fair whose unearred womb disdains the tillage") == [
        "unearred", "womb", "disdains", "the",
    ]  # fmt: skip


def confirmed_after(*passes: str) -> list[str]:
    agreement = LocalAgreement()
    for text in passes:
        agreement.update(text)
    return agreement.confirmed


def test_only_a_short_difference_followed_by_enough_agreed_words_is_passed_over() -> None:
    three_after = confirmed_after("so thou through windows", "so thou through widows of thine age")
    assert three_after == ["so", "thou", "through"]  # nothing after the difference yet
    assert confirmed_after(
        "so thou through windows of thine age", "so thou through widows of thine age shall"
    ) == ["so", "thou", "through", "widows", "of", "thine", "age"]
    two_after = confirmed_after(
        "so thou through windows of thine", "so thou through widows of thine"
    )
    assert two_after == ["so", "thou", "through"]
    two_differences_one_word_apart = confirmed_after(
        "so thou through the windows of thine age", "so thou threw the widow's of thine age"
    )
    assert two_differences_one_word_apart == ["so", "thou"]


def test_final_text_begins_with_the_confirmed_words() -> None:
    agreement = LocalAgreement()
    agreement.update("the quick brown fox")
    agreement.update("the quick brown fox jumps")
    assert agreement.confirmed == ["the", "quick", "brown", "fox"]
    assert agreement.rest_of("The quick brown fox jumps over the dog.") == [
        "jumps", "over", "the", "dog.",
    ]  # fmt: skip
    # The final pass heard a confirmed word otherwise: its rest still follows the match.
    assert agreement.final_text("The quick brown box jumps.") == "the quick brown fox jumps."
    assert agreement.final_text("The quick brown fox") == "the quick brown fox"
    assert LocalAgreement().final_text("  Just  the final. ") == "Just the final."


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Session:
    """What an InterimText sends and publishes, with a clock the test moves."""

    def __init__(self, every: float = 0.75) -> None:
        self.clock = Clock()
        self.published: list[InterimReady] = []
        self.sent: list[dict[str, Any]] = []
        self.out_for: list[float | None] = []  # what the job store was told, in order
        self.interim = InterimText(
            JOB,
            every,
            self.publish,
            self.send,
            lambda index: f"item_{index}",
            self.note_out,
            self.clock,
        )

    async def note_out(self, seconds: float | None) -> None:
        self.out_for.append(seconds)

    async def publish(self, event: Event) -> None:
        assert isinstance(event, InterimReady)
        self.published.append(event)

    async def send(self, event: dict[str, Any]) -> None:
        self.sent.append(event)

    def deltas(self, item: str) -> str:
        return "".join(e["delta"] for e in self.sent if e["type"] == DELTA and e["item_id"] == item)

    def answer(self, text: str, number: int | None = None, index: int = 0) -> InterimRecognized:
        number = self.published[-1].pass_number if number is None else number
        return InterimRecognized(job_id=JOB, utterance_index=index, pass_number=number, text=text)


async def test_deltas_only_append_and_join_to_a_prefix_of_the_completed_text() -> None:
    session = Session()
    passes = ["I think", "I think that we", "I think that we should", "I think that we should go"]
    for text in passes:
        assert await session.interim.ready()
        await session.interim.send_pass(0, AUDIO)
        assert not await session.interim.ready()  # one pass out at a time
        await session.interim.answered(session.answer(text))
        session.clock.now += 0.75
    assert session.deltas("item_0") == "I think that we should"
    completed = await session.interim.completed(0, "I think that we should go home.")
    assert completed == "I think that we should go home."
    assert session.deltas("item_0") == completed  # the last delta is the rest
    # An answer to an utterance already completed sends nothing.
    await session.interim.answered(session.answer("I think that we should go home now"))
    assert session.deltas("item_0") == completed


async def test_a_pass_unanswered_is_given_up_and_a_late_or_older_answer_changes_nothing() -> None:
    session = Session()
    await session.interim.send_pass(0, AUDIO)
    await session.interim.answered(session.answer("one two"))
    session.clock.now += 1
    await session.interim.send_pass(0, AUDIO)
    session.clock.now += ANSWER_WITHIN_SECONDS - 0.1
    assert not await session.interim.ready()
    session.clock.now += 0.2
    # The lost pass is given up, and the session told; the next goes after the interval.
    assert not await session.interim.ready()
    assert [e["error"]["code"] for e in session.sent if e["type"] == "error"] == ["interim_skipped"]
    session.clock.now += 0.75
    assert await session.interim.ready()  # the lost pass no longer holds the session's up
    await session.interim.send_pass(0, AUDIO)
    await session.interim.answered(session.answer("one two three", number=2))
    assert session.deltas("item_0") == "one two"
    # The lost pass answers at last: it is older than one applied, so it is ignored.
    await session.interim.answered(session.answer("one wrong", number=1))
    assert session.deltas("item_0") == "one two"
    # ...and the next pass is compared with the newest before it, not with the late one.
    session.clock.now += 1
    await session.interim.send_pass(0, AUDIO)
    await session.interim.answered(session.answer("one two three four"))
    assert session.deltas("item_0") == "one two three"
    # The job store was told of each pass out (it counts in the key's fair share), and when
    # each was answered or given up; the late answer told it nothing.
    assert session.out_for == [ANSWER_WITHIN_SECONDS, None] * 4


async def test_skipping_is_told_once_until_a_pass_is_answered_again() -> None:
    session = Session()
    why = Skip("interim_skipped", "behind")
    for _ in range(3):
        await session.interim.skip(why)
        session.clock.now += 0.75
    assert [e["error"]["code"] for e in session.sent if e["type"] == "error"] == ["interim_skipped"]
    assert session.published == []
    await session.interim.send_pass(0, AUDIO)
    await session.interim.answered(session.answer("hello"))
    await session.interim.skip(why)
    assert len([e for e in session.sent if e["type"] == "error"]) == 2


async def test_interim_off_sends_no_pass() -> None:
    assert not await Session(every=0).interim.ready()


@pytest.mark.parametrize("seconds", [0.6, 1.0])
async def test_a_pass_is_due_only_after_the_interval(seconds: float) -> None:
    session = Session(every=seconds)
    await session.interim.send_pass(0, AUDIO)
    await session.interim.answered(session.answer("hello"))
    session.clock.now += seconds - 0.01
    assert not await session.interim.ready()
    session.clock.now += 0.02
    assert await session.interim.ready()


async def test_a_slow_pass_is_waited_for_as_long_as_passes_have_taken() -> None:
    session = Session()
    await session.interim.send_pass(0, AUDIO)
    session.clock.now += 3.0  # passes take 3 s on this (busy) machine
    await session.interim.answered(session.answer("one"))
    session.clock.now += 1
    await session.interim.send_pass(0, AUDIO)
    session.clock.now += ANSWER_WITHIN_SECONDS + 1  # longer than the least patience
    assert not await session.interim.ready()
    assert not session.sent  # still waited for, not given up
    session.clock.now += 4.0  # past 1 s + 2.5 times 3 s (8.5 s)
    assert not await session.interim.ready()
    assert [e["error"]["code"] for e in session.sent if e["type"] == "error"] == ["interim_skipped"]


async def test_a_failed_utterance_keeps_no_interim_state() -> None:
    session = Session()
    await session.interim.send_pass(3, AUDIO)
    session.interim.forget(3)
    await session.interim.answered(session.answer("late words", index=3))
    assert session.interim._utterances == {}
    assert session.sent == []


class FailingNotes(FakeJobs):
    async def note_interim_pass(self, job_id: str, out_until: datetime | None) -> None:
        raise AutoReconnect("the primary stepped down (fake)")


def services_of(tmp_path: Path, jobs: FakeJobs, broker: FakeBroker) -> Services:
    settings = GatewaySettings(media_dir=tmp_path, fair_share_per_key=1)
    fakes = cast(Any, (broker, jobs, FakeFleet()))
    store = FolderStore(MediaPaths(tmp_path))
    return Services(settings, fakes[0], fakes[1], store, cast(Any, None), fakes[2], Backlog(*fakes))


async def test_a_pass_out_counts_in_its_keys_share_and_its_end_sends_a_held_upload_on(
    tmp_path: Path,
) -> None:
    jobs, broker = FakeJobs(), FakeBroker()
    session = a_job(JOB, live=True, owner="billing", progress=Progress(pieces_total=0))
    held = a_job("f" * 32, JobStatus.QUEUED, owner="billing", held=True)
    jobs.add(session)
    jobs.add(held)
    note = interim_notes(services_of(tmp_path, jobs, broker), JOB, "billing")
    await note(4.0)
    assert await jobs.count_dispatched("billing") == 1  # the pass fills the key's share of one
    await note(None)
    assert broker.published == [MediaUploaded(job_id=held.job_id)]
    assert not jobs.jobs[held.job_id].held


async def test_a_database_failing_a_note_does_not_end_the_session(tmp_path: Path) -> None:
    note = interim_notes(services_of(tmp_path, FailingNotes(), FakeBroker()), JOB, "billing")
    await note(4.0)
    await note(None)
