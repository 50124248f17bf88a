"""Interim text of one live session: while an utterance is under way, its audio so far goes to
the recognizers every STT_LIVE_INTERIM_SECONDS; the words two passes in a row agree on are sent
as `delta` events (`agreement`), and the utterance's `completed` text begins with them.

Interim passes never hold up anything durable: one session has at most one pass out at a time
(it counts in its key's fair share, but never holds back the session's own utterances),
the pass carries its audio and is never stored, a pass not taken within INTERIM_EXPIRY_SECONDS
is dropped, and a session whose utterances already wait for the recognizers, or whose key has its
fair share of slots, sends none (and says so, once each time it starts skipping)."""

import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.live.agreement import LocalAgreement, delta_text
from gateway.live.turns import Turns
from shared.events import INTERIM_EXPIRY_SECONDS, Event, InterimReady, InterimRecognized
from shared.faults import BrokerUnavailable
from shared.jobs.options import JobOptions

log = logging.getLogger(__name__)

# A pass unanswered this long after the queue's expiry was dropped or lost (its recognizer died):
# the next one may go. At least this long, and longer as passes have been seen to take on this
# machine (a pass of a long utterance on a busy slot takes several seconds).
ANSWER_WITHIN_SECONDS = INTERIM_EXPIRY_SECONDS + 3.0
ROUND_TRIPS_WAITED = 2.5
DELTA = "conversation.item.input_audio_transcription.delta"

Send = Callable[[dict[str, Any]], Awaitable[None]]
# Tells the job store a pass is out for at most so many seconds (None: no longer), so that it
# counts in the key's fair share as the slot it takes.
NoteOut = Callable[[float | None], Awaitable[None]]


@dataclass(frozen=True)
class Skip:
    """Why a session sends no interim pass right now (told to the client as an `error`)."""

    code: str
    message: str


UNANSWERED = Skip(
    "interim_skipped",
    "An interim pass was not answered: the recognizers are busy, and interim text comes less"
    " often; final text still comes.",
)
SKIPPED_BEHIND = Skip(
    "interim_skipped",
    "Interim text is skipped while one of this session's utterances has waited for the"
    " recognizers twice STT_LIVE_BEHIND_SECONDS; final text still comes.",
)
SKIPPED_FOR_SHARE = Skip(
    "interim_skipped",
    "Interim text is skipped while the key has its fair share of recognizer slots"
    " (STT_FAIR_SHARE_PER_KEY); final text still comes.",
)


@dataclass
class _Utterance:
    """The interim state of one utterance, until its `completed` is sent."""

    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    words_sent: int = 0
    last_pass: int = -1


@dataclass(frozen=True)
class _Out:
    utterance_index: int
    pass_number: int
    sent_at: float


@dataclass(frozen=True)
class PassAudio:
    """What a pass hears and how to recognize it."""

    audio_base64: str
    options: JobOptions


def heard_so_far(turns: Turns) -> str | None:
    """The utterance under way as base64 PCM16, for a pass (work for the live threads)."""
    pcm = turns.so_far()
    return None if pcm is None else base64.b64encode(pcm).decode()


class InterimText:
    def __init__(
        self,
        job_id: str,
        every_seconds: float,
        publish: Callable[[Event], Awaitable[None]],
        send: Send,
        item_id: Callable[[int], str],
        note_out: NoteOut,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._job_id = job_id
        self._every = every_seconds
        self._publish = publish
        self._send = send
        self._item_id = item_id
        self._note_out = note_out
        self._clock = clock
        self._utterances: dict[int, _Utterance] = {}
        self._out: _Out | None = None
        self._next_at = 0.0
        self._passes = 0
        self._skipping: str | None = None  # the code told, while passes are skipped
        self._round_trip = 0.0  # how long the last pass answered took
        self.skipped = 0

    @property
    def enabled(self) -> bool:
        return self._every > 0

    async def ready(self) -> bool:
        """Whether a pass may go now: none is out, and the interval since the last has passed.
        A pass out unanswered too long is given up, and the session told the recognizers are
        behind."""
        if not self.enabled:
            return False
        if self._out is not None:
            if self._clock() - self._out.sent_at < self._patience():
                return False
            log.info("job %s: interim pass %d unanswered", self._job_id, self._out.pass_number)
            self._out = None
            await self._note_out(None)
            await self.skip(UNANSWERED)
            return False
        return self._clock() >= self._next_at

    def _patience(self) -> float:
        """How long a pass out is waited for."""
        return max(
            ANSWER_WITHIN_SECONDS, INTERIM_EXPIRY_SECONDS + ROUND_TRIPS_WAITED * self._round_trip
        )

    @property
    def passes_out(self) -> int:
        """This session's passes with the recognizers: 0 or 1."""
        return int(self._out is not None)

    async def skip(self, why: Skip) -> None:
        """No pass this time, for `why`; the client is told when skipping starts."""
        self.skipped += 1
        self._next_at = self._clock() + self._every
        if self._skipping is None:
            self._skipping = why.code
            await self._send(
                {
                    "type": "error",
                    "error": {
                        "type": "server_busy",
                        "code": why.code,
                        "message": why.message,
                        "param": None,
                        "event_id": None,
                    },
                }
            )

    async def send_pass(self, utterance_index: int, audio: PassAudio) -> None:
        """Hand the utterance so far to the recognizers."""
        now = self._clock()
        self._next_at = now + self._every
        self._utterances.setdefault(utterance_index, _Utterance())
        number = self._passes
        self._passes += 1
        event = InterimReady(
            job_id=self._job_id,
            options=audio.options,
            utterance_index=utterance_index,
            pass_number=number,
            sent_at=time.time(),
            audio=audio.audio_base64,
        )
        # Noted before it goes, so that its answer's note always comes after.
        await self._note_out(self._patience())
        try:
            await self._publish(event)
        except BrokerUnavailable as error:
            log.info("job %s: interim pass not sent: %s", self._job_id, error)
            await self._note_out(None)
            return
        self._out = _Out(utterance_index, number, now)

    async def answered(self, result: InterimRecognized) -> None:
        """A pass's text: send the words it confirms, if its utterance has no final text yet."""
        if self._out is not None and self._out.pass_number == result.pass_number:
            self._round_trip = self._clock() - self._out.sent_at
            self._out = None
            self._skipping = None
            await self._note_out(None)
        state = self._utterances.get(result.utterance_index)
        if state is None or result.pass_number <= state.last_pass:
            return  # completed already, or an older pass answered late
        state.last_pass = result.pass_number
        fresh = state.agreement.update(result.text)
        if fresh:
            await self._send_delta(result.utterance_index, state, fresh)

    async def completed(self, utterance_index: int, final_text: str) -> str:
        """The utterance's final pass: send the delta of the words not sent yet, and give its
        `completed` text (the confirmed words, then the rest of the final pass)."""
        state = self._utterances.pop(utterance_index, None) or _Utterance()
        rest = state.agreement.rest_of(final_text)
        if rest:
            await self._send_delta(utterance_index, state, rest)
        return state.agreement.final_text(final_text)

    def forget(self, utterance_index: int) -> None:
        """The utterance failed: its interim words are of no more use."""
        self._utterances.pop(utterance_index, None)

    async def _send_delta(self, index: int, state: _Utterance, words: list[str]) -> None:
        delta = delta_text(state.words_sent, words)
        state.words_sent += len(words)
        await self._send(
            {"type": DELTA, "item_id": self._item_id(index), "content_index": 0, "delta": delta}
        )
