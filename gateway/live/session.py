"""`/v1/realtime`: live transcription over a WebSocket, in the shape of OpenAI's Realtime API for
transcription sessions, so its clients work unchanged.

A session is a job. The gateway cuts the streamed audio into utterances at pauses (gateway/turns.py),
stores each as a piece of the job and hands it to the recognizers on a queue they take before
file work; whichever recognizer is free stores the text with the job and tells the gateway
through the broker. When the session ends the job holds the whole transcript, like any job.
"""

import asyncio
import contextlib
import json
import logging
import time
import uuid
import wave
from collections.abc import MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import WebSocket
from pymongo.errors import PyMongoError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from gateway.auth import Caller
from gateway.interim import InterimText, PassAudio, Skip, heard_so_far
from gateway.live_config import LiveConfig, updated_config
from gateway.live_events import APPEND, ClientEvent, SessionError, client_event
from gateway.live_pace import AudioPace
from gateway.live_sessions import SESSION_ALIVE_SECONDS, LiveSessions
from gateway.services import Services
from gateway.submit import RefusedChoice, check_served, choose_engine_and_language
from gateway.turns import RATE, SpeechStarted, SpeechStopped, Turns, Utterance
from shared.events import InterimRecognized, UtteranceReady, UtteranceRecognized
from shared.faults import BrokerUnavailable
from shared.jobs.deadline import deadline_for
from shared.jobs.models import Job, JobError, JobStatus, Progress, new_job_id, now
from shared.live import finish_if_complete, give_up_utterance
from shared.pipeline import announce_end

log = logging.getLogger(__name__)

SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."
# Without news from the broker, the job's stored pieces are read this often, so an utterance
# whose event was missed (a gateway reconnecting to the broker) still reaches the client.
RESULT_POLL_SECONDS = 2.0
# At most this long between a session's looks at how long its utterances have waited.
LAG_CHECK_SECONDS = 0.25
# At the end of a session the gateway closes, what is under way may take this long to arrive;
# as the gateway shuts down, this much less (the texts stay in the job).
DRAIN_SECONDS = 30.0
SHUTDOWN_DRAIN_SECONDS = 5.0
# How often a session waiting for its key's fair share asks whether a slot is free.
SHARE_POLL_SECONDS = 1.0
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_POLICY = 1008
CLOSE_SERVICE_RESTART = 1012
INTERIM_BEHIND = (
    "Interim text is skipped while one of this session's utterances has waited for the"
    " recognizers twice STT_LIVE_BEHIND_SECONDS; final text still comes."
)
INTERIM_SHARE = (
    "Interim text is skipped while the key has its fair share of recognizer slots"
    " (STT_FAIR_SHARE_PER_KEY); final text still comes."
)


@dataclass
class Pending:
    """An utterance handed to the recognizers whose text has not come back."""

    item_id: str
    stopped_at: float


def _write_wav(path: Path, utterance: Utterance) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.part")
    with contextlib.closing(wave.open(str(partial), "wb")) as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(RATE)
        output.writeframes(utterance.samples.astype("<i2").tobytes())
    partial.replace(path)


class LiveSession:
    def __init__(
        self, websocket: WebSocket, services: Services, sessions: LiveSessions, caller: Caller
    ) -> None:
        self._socket = websocket
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
        self._pending: dict[int, Pending] = {}
        self._told = asyncio.Event()  # set each time an utterance's text was sent
        self._stopping = asyncio.Event()  # the gateway is shutting down
        self._reading = True  # until the client left or the session ends
        self._heard_samples = 0  # at 16 kHz, before the audio now buffered
        self._sending = asyncio.Lock()
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
        )

    def _item_id(self, index: int) -> str:
        return f"item_{self.job_id[:16]}_{index:05d}"

    def stop(self) -> None:
        """The gateway is shutting down: hand out what is buffered, and close."""
        self._stopping.set()
        self._told.set()  # wakes whatever waits for texts, so that it looks

    async def run(self) -> None:
        job = await self._start_job()
        refusal = await self._sessions.key_refusal(self._services, self._caller, job)
        if refusal is not None:
            await self._services.jobs.delete(self.job_id)
            await self.error("session_limit_reached", refusal, kind="server_busy")
            await self.close(CLOSE_TRY_AGAIN_LATER, "too many sessions")
            return
        await self._send(
            {"type": "session.created", "session": self._config.ga_session(self.job_id)}
        )
        watchers = [
            asyncio.create_task(self._relay_results()),
            asyncio.create_task(self._watch_lag()),
            asyncio.create_task(self._keep_alive()),
        ]
        try:
            closing = await self._read()
            self._reading = False
            await self._finish_audio()
            if closing is not None:
                await self._drain()
                await self.close(*closing)
        finally:
            for watcher in watchers:
                watcher.cancel()
            for ended in await asyncio.gather(*watchers, return_exceptions=True):
                if not isinstance(ended, asyncio.CancelledError | None):
                    log.error("job %s: a session task failed", self.job_id, exc_info=ended)
            await self._end_job()

    async def _start_job(self) -> Job:
        settings = self._settings
        jobs = self._services.jobs
        job = await jobs.create(
            self.job_id,
            filename="live session",
            size_bytes=0,
            content_type="audio/pcm",
            language=self._config.language,
            engine=self._config.engine,
            owner=self._caller.name,
            settings=settings,
        )
        await jobs.advance(
            self.job_id,
            JobStatus.RECOGNIZING,
            allowed_from=(JobStatus.QUEUED,),
            live=True,
            live_seen_at=now(),
            progress=Progress(pieces_total=0, audio_seconds_total=0.0).model_dump(),
            # As long as the longest session's audio may need.
            deadline_at=deadline_for(job, settings, settings.live_max_session_seconds),
        )
        log.info(
            "job %s: live session started%s",
            self.job_id, f" for key {self._caller.name}" if self._caller.name else "",
        )  # fmt: skip
        return job

    async def _keep_alive(self) -> None:
        """Mark the session's job alive, so every gateway counts the session for its key."""
        while True:
            await asyncio.sleep(SESSION_ALIVE_SECONDS)
            try:
                await self._services.jobs.note_live_alive(self.job_id)
            except PyMongoError as error:
                log.warning("job %s: session not marked alive: %r", self.job_id, error)

    def _seconds_left(self) -> float:
        return self._settings.live_max_session_seconds - (time.monotonic() - self._started)

    async def _read(self) -> tuple[int, str] | None:
        """Handle client events until the client leaves (None) or a limit or the gateway's
        shutdown ends the session (the close code and reason)."""
        settings = self._settings
        while True:
            session_left = self._seconds_left()
            if session_left <= 0:
                await self.error(
                    "session_expired",
                    f"The session reached its maximum length of"
                    f" {settings.live_max_session_seconds:g} s (STT_LIVE_MAX_SESSION_SECONDS).",
                )
                return CLOSE_POLICY, "session length limit"
            await self._wait_for_recognizers()
            await self._wait_for_pace()
            try:
                async with asyncio.timeout(min(settings.live_idle_timeout_seconds, session_left)):
                    message = await self._next_message()
            except TimeoutError:
                if session_left <= settings.live_idle_timeout_seconds:
                    continue  # the session limit, said at the top of the loop
                await self.error(
                    "idle_timeout",
                    f"Nothing was received for {settings.live_idle_timeout_seconds:g} s"
                    " (STT_LIVE_IDLE_TIMEOUT_SECONDS); the session ends.",
                )
                return CLOSE_POLICY, "idle"
            if message is None:
                return CLOSE_SERVICE_RESTART, "the gateway is shutting down"
            if message["type"] == "websocket.disconnect":
                return None
            await self._handle_message(message)

    async def _next_message(self) -> MutableMapping[str, Any] | None:
        """The client's next message, or None once the gateway is shutting down."""
        if self._stopping.is_set():
            return None
        receiving = asyncio.ensure_future(self._socket.receive())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not receiving.done():
                receiving.cancel()
        return receiving.result() if receiving.done() and not receiving.cancelled() else None

    async def _until_told(self, seconds: float) -> None:
        """Until the next utterance's text is sent (or the gateway stops), `seconds` at most;
        the session's pace credits the client with the time it was kept waiting."""
        started = time.monotonic()
        self._told.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                await self._told.wait()
        self._pace.held_back(time.monotonic() - started)

    async def _wait_for_recognizers(self) -> None:
        """Backpressure: while too many utterances wait for their text, stop reading (the
        client's sends then wait), and say so."""
        limit = self._settings.live_max_pending_utterances
        if len(self._pending) < limit:
            return
        await self.error(
            "recognition_behind",
            f"{len(self._pending)} utterances wait to be recognized; audio is read again once"
            f" fewer than {limit} wait (STT_LIVE_MAX_PENDING_UTTERANCES).",
            kind="server_busy",
        )
        while (
            len(self._pending) >= limit and not self._stopping.is_set() and self._seconds_left() > 0
        ):
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
        share, owner = self._settings.fair_share_per_key, self._caller.name
        if share is None or owner is None or not self._reading:
            return  # what is left as the session ends goes at once: nothing more is read
        told = False
        while (
            not self._stopping.is_set()
            and self._seconds_left() > 0
            and await self._services.jobs.count_dispatched(owner) >= share
        ):
            if not told:
                told = True
                await self.error(
                    "fair_share_busy",
                    f"The key {owner!r} has {share} jobs or utterances with the recognizers, its"
                    " fair share (STT_FAIR_SHARE_PER_KEY); the next utterance goes, and audio is"
                    " read again, once one is done.",
                    kind="server_busy",
                )
            await self._until_told(SHARE_POLL_SECONDS)

    async def _watch_lag(self) -> None:
        """Say when the oldest utterance waiting for its text has waited longer than
        STT_LIVE_BEHIND_SECONDS since its speech stopped; say it again only after the session
        has caught up (no utterance waiting that long)."""
        limit = self._settings.live_behind_seconds
        behind = False
        while True:
            now = time.monotonic()
            oldest = min((pending.stopped_at for pending in self._pending.values()), default=now)
            waited = now - oldest
            if waited <= limit:
                behind = False
                # Until the oldest would pass the limit, looking again as utterances come and go.
                await asyncio.sleep(min(oldest + limit - now, LAG_CHECK_SECONDS) + 0.001)
                continue
            if not behind:
                behind = True
                await self.error(
                    "recognition_behind",
                    f"An utterance's text has not come back {limit:g} s after its speech"
                    " stopped (STT_LIVE_BEHIND_SECONDS): recognition is slower than that, from"
                    " queueing or the engine's own speed. Its text still comes; nothing is"
                    " dropped.",
                    kind="server_busy",
                )
            await asyncio.sleep(LAG_CHECK_SECONDS)

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
            await self._handle(event)
        except SessionError as error:
            await self.error(
                error.code, error.message, error.param, error.event_id or event_id, error.kind
            )

    def _charge(self, characters: int) -> None:
        """Count a message that is not audio against the session's pace, as if it were audio
        (base64 at the session's rate), so that large messages of any kind are read no faster
        than audio would be."""
        self._pace.take(characters * 3 / 4 / 2 / self._config.rate)
        if self._pace.allowance() < 0:
            self._overran = True

    async def _handle(self, event: ClientEvent) -> None:
        kind = event.kind
        if kind in ("session.update", "transcription_session.update"):
            await self._update(kind, event.event.get("session"))
        elif kind == APPEND:
            await self._append(event)
        elif kind == "input_audio_buffer.commit":
            utterances = await self._sessions.run(self._audio().commit)
            if not utterances:
                raise SessionError(
                    "input_audio_buffer_commit_empty",
                    "The buffer holds less than 100 ms of audio; nothing was committed.",
                )
            for utterance in utterances:
                await self._hand_out(utterance)
        elif kind == "input_audio_buffer.clear":
            await self._sessions.run(self._audio().clear)
            await self._send({"type": "input_audio_buffer.cleared"})
        else:
            raise SessionError(
                "unknown_event",
                f"Unknown event type {kind!r}; a transcription session takes session.update,"
                " input_audio_buffer.append, input_audio_buffer.commit and"
                " input_audio_buffer.clear.",
                "type",
            )

    async def _update(self, kind: str, session: Any) -> None:
        config = updated_config(self._config, kind, session)
        engine = config.engine or self._settings.default_engine
        try:
            engine, language = choose_engine_and_language(
                self._settings, engine, config.language or None
            )
            await check_served(self._services, engine)
        except RefusedChoice as refused:
            raise SessionError("invalid_value", refused.message, refused.field) from refused
        config = replace(config, engine=engine, language=language)
        if (engine, language, config.prompt) != (
            self._config.engine,
            self._config.language,
            self._config.prompt,
        ):
            if self._next_index > 0:
                raise SessionError(
                    "session_in_use",
                    "The model, language and prompt cannot change once audio was committed;"
                    " start a new session.",
                )
            await self._services.jobs.advance(
                self.job_id,
                JobStatus.RECOGNIZING,
                allowed_from=(JobStatus.RECOGNIZING,),
                engine=engine,
                language=language,
                prompt=config.prompt,
            )
        if (config.rate, config.vad) != (self._config.rate, self._config.vad):
            # What was buffered in the old format is handed out first.
            await self._finish_audio()
        self._config = config
        if kind == "session.update":
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
        limit, moment = 2 * self._settings.live_behind_seconds, time.monotonic()
        if any(moment - pending.stopped_at > limit for pending in self._pending.values()):
            await self._interim.skip(Skip("interim_skipped", INTERIM_BEHIND))
            return
        share, owner = self._settings.fair_share_per_key, self._caller.name
        if (
            share is not None
            and owner is not None
            and await self._services.jobs.count_dispatched(owner) >= share
        ):
            await self._interim.skip(Skip("interim_skipped", INTERIM_SHARE))
            return
        heard = await self._sessions.run(heard_so_far, turns)
        if heard is not None:
            config = self._config
            audio = PassAudio(heard, config.engine, config.language, config.prompt)
            await self._interim.send_pass(self._next_index, audio)

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
        path = services.store.local.piece(self.job_id, index)
        await self._sessions.run(_write_wav, path, utterance)
        await services.store.keep_piece(self.job_id, index)
        await services.jobs.add_live_piece(self.job_id, utterance.seconds)
        self._pending[index] = Pending(item_id, stopped_at)
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
            await self._give_up(index, "broker_unavailable", "The message broker is away.")

    async def _give_up(self, index: int, code: str, message: str) -> None:
        """Count an utterance that will not be recognized as an empty piece, so the job still
        completes, and tell the client."""
        job = await self._services.jobs.get(self.job_id)
        if job is None:
            return
        _, told = await give_up_utterance(
            self._services.jobs, job, index, JobError(code=code, message=message), "gateway"
        )
        await self._deliver(told)

    async def _relay_results(self) -> None:
        """Send each utterance's text as it comes back through the broker; look in the job's
        stored pieces too when nothing came for a while."""
        with self._services.watcher.listening(self.job_id) as events:
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), RESULT_POLL_SECONDS)
                except TimeoutError:
                    await self._look_in_store()
                    continue
                if isinstance(event, UtteranceRecognized):
                    await self._deliver(event)
                elif isinstance(event, InterimRecognized):
                    await self._interim.answered(event)

    async def _look_in_store(self) -> None:
        jobs = self._services.jobs
        for index in list(self._pending):
            piece = await jobs.piece(self.job_id, index)
            if piece is not None:
                await self._deliver(
                    UtteranceRecognized(
                        job_id=self.job_id,
                        piece_index=index,
                        text=piece.transcript.text,
                        segments=piece.transcript.segments,
                    )
                )
        if not self._pending:
            return
        job = await jobs.get(self.job_id)
        if job is None or job.status.is_final:
            status = job.status if job is not None else "deleted"
            for index in list(self._pending):
                await self._deliver(
                    UtteranceRecognized(
                        job_id=self.job_id,
                        piece_index=index,
                        text="",
                        error=JobError(code="job_ended", message=f"The session's job is {status}."),
                    )
                )

    async def _deliver(self, result: UtteranceRecognized) -> None:
        pending = self._pending.pop(result.piece_index, None)
        if pending is None:
            return  # told already (a copy of the event, or found in the store first)
        self._told.set()
        if result.error is not None:
            self._interim.forget(result.piece_index)
            await self._send(
                {
                    "type": "conversation.item.input_audio_transcription.failed",
                    "item_id": pending.item_id,
                    "content_index": 0,
                    "error": {
                        "type": "transcription_error",
                        "code": result.error.code,
                        "message": result.error.message,
                        "param": None,
                    },
                }
            )
            return
        text = await self._interim.completed(result.piece_index, result.text)
        seconds = sum(segment.end - segment.start for segment in result.segments)
        await self._send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": pending.item_id,
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": round(seconds, 3)},
                "segments": [segment.model_dump() for segment in result.segments],
            }
        )

    async def _drain(self) -> None:
        """Before the gateway closes a session: let the texts under way arrive."""
        stopping = self._stopping.is_set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_DRAIN_SECONDS if stopping else DRAIN_SECONDS):
                while self._pending:
                    self._told.clear()
                    await self._told.wait()

    async def close(self, code: int, reason: str) -> None:
        if self._socket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._socket.close(code, reason)

    async def _end_job(self) -> None:
        """Record the session's end; the job is done now if every utterance is recognized, else
        when the last one is."""
        jobs = self._services.jobs
        ended: Job | None = await jobs.end_live(self.job_id, self._seconds)
        log.info("job %s: live session ended, %d utterance(s)", self.job_id, self._next_index)
        if ended is None:
            return
        done = await finish_if_complete(jobs, ended)
        if done is not None:
            with contextlib.suppress(BrokerUnavailable):  # the janitor announces it later
                await announce_end(jobs, self._services.broker.publish, done)

    async def error(
        self,
        code: str,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        error = {"type": kind, "code": code, "message": message, "param": param}
        await self._send({"type": "error", "error": {**error, "event_id": event_id}})

    async def _send(self, event: dict[str, Any]) -> None:
        event = {"event_id": f"event_{uuid.uuid4().hex[:20]}", **event}
        async with self._sending:
            if self._socket.application_state is not WebSocketState.CONNECTED:
                return
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._socket.send_text(json.dumps(event))


def presented_key(websocket: WebSocket) -> tuple[str, str | None]:
    """The API key a client presented, and the subprotocol to answer with: OpenAI's clients
    send the key as a bearer token, its browser clients as a subprotocol (browsers cannot set
    headers on a WebSocket) beside `realtime`. Only `realtime` is ever answered: echoing the
    key's subprotocol would write the secret into the response, where proxies log it."""
    authorization = websocket.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    offered = [
        name.strip()
        for name in websocket.headers.get("sec-websocket-protocol", "").split(",")
        if name.strip()
    ]
    answered = next((name for name in offered if name == "realtime"), None)
    for name in offered:
        if name.startswith(SUBPROTOCOL_KEY_PREFIX):
            return name.removeprefix(SUBPROTOCOL_KEY_PREFIX), answered
    if scheme.lower() == "bearer" and token:
        return token.strip(), answered
    return "", answered
