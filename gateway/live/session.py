"""One live session (`/v1/realtime`), a job of its own: it reads the client's events within the
session's limits and pace, cuts the audio into utterances at pauses (`turns`), stores each as a
piece of the job and hands it to the recognizers on a queue they take before file work. When the
session ends the job holds the whole transcript, like any job.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import MutableMapping
from typing import Any

from fastapi import WebSocket

from gateway.auth import Caller
from gateway.live.admission import key_refusal
from gateway.live.config import LiveConfig, checked_choice, updated_config
from gateway.live.events import APPEND, ClientEvent, SessionError, client_event
from gateway.live.interim import (
    SKIPPED_BEHIND,
    SKIPPED_FOR_SHARE,
    InterimText,
    PassAudio,
    heard_so_far,
)
from gateway.live.job import (
    end_job,
    interim_notes,
    keep_alive,
    keep_utterance,
    record_choice,
    start_job,
    write_utterance,
)
from gateway.live.pace import AudioPace
from gateway.live.protocol import (
    BETA_SESSION_UPDATE,
    CLEAR,
    CLOSE_POLICY,
    CLOSE_SERVICE_RESTART,
    CLOSE_TRY_AGAIN_LATER,
    COMMIT,
    SESSION_UPDATE,
    EventRouter,
)
from gateway.live.results import LiveResults
from gateway.live.sessions import LiveSessions
from gateway.live.socket import SessionSocket
from gateway.live.turns import RATE, SpeechStarted, SpeechStopped, Turns, Utterance
from gateway.services import Services
from shared.events import UtteranceReady
from shared.faults import BrokerUnavailable
from shared.jobs.models import new_job_id

log = logging.getLogger(__name__)

# How often a session waiting for its key's fair share asks whether a slot is free.
SHARE_POLL_SECONDS = 1.0

ROUTER: EventRouter["LiveSession"] = EventRouter()


class LiveSession:
    """One client's session: reads its events within the session's limits and pace, cuts its
    audio into utterances and hands each to the recognizers, and keeps its job."""

    def __init__(
        self, websocket: WebSocket, services: Services, sessions: LiveSessions, caller: Caller
    ) -> None:
        self._socket = SessionSocket(websocket)
        self._send = self._socket.send
        self._services = services
        self._sessions = sessions
        self._settings = services.settings
        self._caller = caller
        self.job_id = new_job_id()
        self._config = LiveConfig(
            engine=self._settings.default_engine, language=self._settings.default_language
        )
        self._turns: Turns | None = None
        self._next_index = 0
        self._stopping = asyncio.Event()  # the gateway is shutting down
        self._reading = True  # until the client left or the session ends
        self._heard_samples = 0  # at 16 kHz, before the audio now buffered
        self._previous_item: str | None = None
        self._started = time.monotonic()
        self._pace = AudioPace(self._settings.live_burst_seconds, self._settings.live_max_pace)
        self._overran = False  # audio of the last message was dropped for its pace
        self._interim = InterimText(
            self.job_id,
            self._settings.live_interim_seconds,
            services.broker.publish,
            self._send,
            self._item_id,
            interim_notes(services, self.job_id, caller.name),
        )
        self._results = LiveResults(self.job_id, services, self._interim, self._send)

    def _item_id(self, index: int) -> str:
        return f"item_{self.job_id[:16]}_{index:05d}"

    def stop(self) -> None:
        """The gateway is shutting down: hand out what is buffered, and close."""
        self._stopping.set()
        self._results.told.set()  # wakes whatever waits for texts, so that it looks

    async def run(self) -> None:
        job = await start_job(self._services, self.job_id, self._config, self._caller.name)
        refusal = await key_refusal(self._services, self._caller, job)
        if refusal is not None:
            await self._services.jobs.delete(self.job_id)
            await self.tell(SessionError("session_limit_reached", refusal, kind="server_busy"))
            await self.close(CLOSE_TRY_AGAIN_LATER, "too many sessions")
            return
        await self._send(
            {"type": "session.created", "session": self._config.ga_session(self.job_id)}
        )
        watchers = [
            asyncio.create_task(self._results.relay()),
            asyncio.create_task(self._results.watch_lag(self._settings.live_behind_seconds)),
            asyncio.create_task(keep_alive(self._services, self.job_id)),
        ]
        try:
            closing = await self._read()
            self._reading = False
            await self._finish_audio()
            if closing is not None:
                await self._results.drain(self._stopping.is_set())
                await self.close(*closing)
        finally:
            for watcher in watchers:
                watcher.cancel()
            for ended in await asyncio.gather(*watchers, return_exceptions=True):
                if not isinstance(ended, asyncio.CancelledError | None):
                    log.error("job %s: a session task failed", self.job_id, exc_info=ended)
            await end_job(self._services, self.job_id, self._seconds, self._next_index)

    def _seconds_left(self) -> float:
        return self._settings.live_max_session_seconds - (time.monotonic() - self._started)

    async def _read(self) -> tuple[int, str] | None:
        """Handle client events until the client leaves (None) or a limit or the gateway's
        shutdown ends the session (the close code and reason)."""
        settings = self._settings
        while True:
            session_left = self._seconds_left()
            if session_left <= 0:
                await self.tell(
                    SessionError(
                        "session_expired",
                        f"The session reached its maximum length of"
                        f" {settings.live_max_session_seconds:g} s"
                        " (STT_LIVE_MAX_SESSION_SECONDS).",
                    )
                )
                return CLOSE_POLICY, "session length limit"
            await self._wait_for_recognizers()
            await self._wait_for_pace()
            try:
                async with asyncio.timeout(min(settings.live_idle_timeout_seconds, session_left)):
                    message = await self._socket.receive(self._stopping)
            except TimeoutError:
                if session_left <= settings.live_idle_timeout_seconds:
                    continue  # the session limit, said at the top of the loop
                await self.tell(
                    SessionError(
                        "idle_timeout",
                        f"Nothing was received for {settings.live_idle_timeout_seconds:g} s"
                        " (STT_LIVE_IDLE_TIMEOUT_SECONDS); the session ends.",
                    )
                )
                return CLOSE_POLICY, "idle"
            if message is None:
                return CLOSE_SERVICE_RESTART, "the gateway is shutting down"
            if message["type"] == "websocket.disconnect":
                return None
            await self._handle_message(message)

    async def _until_told(self, seconds: float) -> None:
        """Until the next utterance's text is sent (or the gateway stops), `seconds` at most;
        the session's pace credits the client with the time it was kept waiting."""
        started = time.monotonic()
        told = self._results.told
        told.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                await told.wait()
        self._pace.held_back(time.monotonic() - started)

    async def _wait_for_recognizers(self) -> None:
        """Backpressure: while too many utterances wait for their text, stop reading (the
        client's sends then wait), and say so."""
        limit, pending = self._settings.live_max_pending_utterances, self._results.pending
        if len(pending) < limit:
            return
        await self.tell(
            SessionError(
                "recognition_behind",
                f"{len(pending)} utterances wait to be recognized; audio is read again once"
                f" fewer than {limit} wait (STT_LIVE_MAX_PENDING_UTTERANCES).",
                kind="server_busy",
            )
        )
        while len(pending) >= limit and not self._stopping.is_set() and self._seconds_left() > 0:
            await self._until_told(self._seconds_left())

    async def _wait_for_pace(self) -> None:
        """After a message ran ahead of the session's pace, read nothing more until the
        session's allowance is whole again: a client that floods the session is slowed to its
        pace by its own socket, rather than having the gateway read and drop its messages."""
        if not self._overran:
            return
        self._overran = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(self._pace.until_whole(), self._seconds_left())):
                await self._stopping.wait()

    async def _wait_for_share(self) -> None:
        """Fair share: while the key's jobs and utterances in the recognizers' hands fill its
        share (STT_FAIR_SHARE_PER_KEY), hold the next utterance and read nothing, and say so
        once. Live utterances are taken before files, so without this one key's sessions could
        keep every slot."""
        if not self._reading:
            return  # what is left as the session ends goes at once: nothing more is read
        told = False
        while (
            not self._stopping.is_set()
            and self._seconds_left() > 0
            and await self._key_has_its_share()
        ):
            if not told:
                told = True
                await self.tell(
                    SessionError(
                        "fair_share_busy",
                        f"The key {self._caller.name!r} has {self._settings.fair_share_per_key}"
                        " jobs or utterances with the recognizers,"
                        " its fair share (STT_FAIR_SHARE_PER_KEY); the next utterance goes, and"
                        " audio is read again, once one is done.",
                        kind="server_busy",
                    )
                )
            await self._until_told(SHARE_POLL_SECONDS)

    async def _key_has_its_share(self) -> bool:
        """Whether the key's jobs and utterances in the recognizers' hands fill its fair share
        (STT_FAIR_SHARE_PER_KEY). This session's own interim pass does not hold it back."""
        share, owner = self._settings.fair_share_per_key, self._caller.name
        if share is None or owner is None:
            return False
        dispatched = await self._services.jobs.count_dispatched(owner)
        return dispatched - self._interim.passes_out >= share

    async def _handle_message(self, message: MutableMapping[str, Any]) -> None:
        event_id: str | None = None
        try:
            text = message.get("text")
            if text is None:
                raise SessionError(
                    "invalid_event", "Events are JSON text messages; this one was binary."
                )
            audio_bytes_allowed = max(0, int(self._pace.allowance() * self._config.rate)) * 2
            try:
                event = await self._sessions.run(client_event, text, audio_bytes_allowed)
            except SessionError:
                self._charge(len(text))
                raise
            if event.kind != APPEND:
                self._charge(len(text))
            event_id = event.event_id
            await ROUTER.dispatch(self, event)
        except SessionError as error:
            error.event_id = error.event_id or event_id
            await self.tell(error)

    def _charge(self, characters: int) -> None:
        """Count a message that is not audio against the session's pace, as if it were audio
        (base64 at the session's rate), so that large messages of any kind are read no faster
        than audio would be."""
        self._pace.take(characters * 3 / 4 / 2 / self._config.rate)
        if self._pace.allowance() < 0:
            self._overran = True

    @ROUTER.on(COMMIT)
    async def _commit(self, _event: ClientEvent) -> None:
        utterances = await self._sessions.run(self._audio().commit)
        if not utterances:
            raise SessionError(
                "input_audio_buffer_commit_empty",
                "The buffer holds less than 100 ms of audio; nothing was committed.",
            )
        for utterance in utterances:
            await self._hand_out(utterance)

    @ROUTER.on(CLEAR)
    async def _clear(self, _event: ClientEvent) -> None:
        await self._sessions.run(self._audio().clear)
        await self._send({"type": "input_audio_buffer.cleared"})

    @ROUTER.on(SESSION_UPDATE, BETA_SESSION_UPDATE)
    async def _update(self, event: ClientEvent) -> None:
        kind = event.kind
        config = await checked_choice(
            self._services, updated_config(self._config, kind, event.event.get("session"))
        )
        if config.options != self._config.options:
            if self._next_index > 0:
                raise SessionError(
                    "session_in_use",
                    "The model, language and prompt cannot change once audio was committed;"
                    " start a new session.",
                )
            await record_choice(self._services, self.job_id, config)
        if (config.rate, config.vad) != (self._config.rate, self._config.vad):
            # What was buffered in the old format is handed out first.
            await self._finish_audio()
        self._config = config
        if kind == SESSION_UPDATE:
            reply = {"type": "session.updated", "session": config.ga_session(self.job_id)}
        else:
            reply = {
                "type": "transcription_session.updated",
                "session": config.beta_session(self.job_id),
            }
        await self._send(reply)

    def _audio(self) -> Turns:
        if self._turns is None:
            self._turns = Turns(
                self._config.rate,
                self._config.vad,
                self._heard_samples,
                cut_after_seconds=self._settings.live_utterance_seconds,
            )
        return self._turns

    @property
    def _seconds(self) -> float:
        """How much audio the session has had."""
        samples = self._turns.total_samples if self._turns is not None else self._heard_samples
        return samples / RATE

    @ROUTER.on(APPEND)
    async def _append(self, event: ClientEvent) -> None:
        rate = self._config.rate
        # What was dropped counts too: the session then reads nothing for as long as the pace
        # takes to allow it (`_wait_for_pace`), so a flood slows itself down.
        self._pace.take((len(event.pcm) + event.dropped_bytes) / 2 / rate)
        if event.pcm:
            turns = self._audio()
            for happening in await self._sessions.run(turns.append, event.pcm):
                if isinstance(happening, SpeechStarted):
                    await self._send(
                        {
                            "type": "input_audio_buffer.speech_started",
                            "audio_start_ms": happening.audio_start_ms,
                            "item_id": self._item_id(self._next_index),
                        }
                    )
                elif isinstance(happening, SpeechStopped):
                    await self._send(
                        {
                            "type": "input_audio_buffer.speech_stopped",
                            "audio_end_ms": happening.audio_end_ms,
                            "item_id": self._item_id(self._next_index),
                        }
                    )
                else:
                    await self._hand_out(happening)
            await self._offer_interim(turns)
        if event.dropped_bytes:
            self._overran = True
            settings = self._settings
            raise SessionError(
                "input_audio_too_fast",
                f"{event.dropped_bytes / 2 / rate:.2f} s of this message's audio were dropped:"
                f" a session may send {settings.live_max_pace:g} times real time"
                f" (STT_LIVE_MAX_PACE), and at most {settings.live_burst_seconds:g} s ahead of"
                " that (STT_LIVE_BURST_SECONDS).",
                "audio",
            )

    async def _offer_interim(self, turns: Turns) -> None:
        """An interim pass over the utterance under way, if one is due and the recognizers
        have room for it: this session's utterances and its key's fair share go first."""
        if not turns.speaking or not await self._interim.ready():
            return
        # Twice the wait the session is told about: the engine's own time is in that wait.
        if self._results.waited_longer_than(2 * self._settings.live_behind_seconds):
            await self._interim.skip(SKIPPED_BEHIND)
            return
        if await self._key_has_its_share():
            await self._interim.skip(SKIPPED_FOR_SHARE)
            return
        heard = await self._sessions.run(heard_so_far, turns)
        if heard is not None:
            await self._interim.send_pass(self._next_index, PassAudio(heard, self._config.options))

    async def _finish_audio(self) -> None:
        """Hand out what the session's audio still holds, and start afresh."""
        if self._turns is None:
            return
        utterances = await self._sessions.run(self._turns.finish)
        self._heard_samples = self._turns.total_samples
        self._turns = None
        for utterance in utterances:
            await self._hand_out(utterance)

    async def _hand_out(self, utterance: Utterance) -> None:
        """Store the utterance as the job's next piece and hand it to the recognizers."""
        stopped_at = time.monotonic()  # its speech stopped, or it was committed, just before
        await self._wait_for_share()
        index = self._next_index
        self._next_index += 1
        item_id = self._item_id(index)
        services = self._services
        await self._sessions.run(write_utterance, services, self.job_id, index, utterance)
        await keep_utterance(services, self.job_id, index, utterance.seconds)
        self._results.expect(index, item_id, stopped_at)
        await self._send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": self._previous_item,
            }
        )
        self._previous_item = item_id
        try:
            await services.broker.publish(
                UtteranceReady(
                    job_id=self.job_id,
                    engine=self._config.engine,
                    piece_index=index,
                    offset_seconds=utterance.start_ms / 1000,
                    piece_seconds=utterance.seconds,
                )
            )
        except BrokerUnavailable as error:
            log.warning("job %s: utterance %d not handed out: %s", self.job_id, index, error)
            await self._results.give_up(index, "broker_unavailable", "The message broker is away.")

    async def tell(self, error: SessionError) -> None:
        await self._send(error.event())

    async def close(self, code: int, reason: str) -> None:
        await self._socket.close(code, reason)
