"""The texts of a live session's utterances as they come back: each utterance handed to the
recognizers waits here until its text (or why there is none) arrives through the broker, or is
found in the job's stored pieces should that event be missed, and is then sent to the client as
a `completed` or `failed` event. How long the oldest has waited is watched and told."""

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from gateway.live.events import SessionError
from gateway.live.interim import InterimText, Send
from gateway.services import Services
from shared.events import InterimRecognized, UtteranceRecognized
from shared.jobs.models import JobError
from shared.live import give_up_utterance

log = logging.getLogger(__name__)

# Without news from the broker, the job's stored pieces are read this often, so an utterance
# whose event was missed (a gateway reconnecting to the broker) still reaches the client.
RESULT_POLL_SECONDS = 2.0
# At most this long between looks at how long the utterances have waited.
LAG_CHECK_SECONDS = 0.25
# At the end of a session the gateway closes, what is under way may take this long to arrive;
# as the gateway shuts down, this much less (the texts stay in the job).
DRAIN_SECONDS = 30.0
SHUTDOWN_DRAIN_SECONDS = 5.0


@dataclass
class Pending:
    """An utterance handed to the recognizers whose text has not come back."""

    item_id: str
    stopped_at: float


class LiveResults:
    def __init__(self, job_id: str, services: Services, interim: InterimText, send: Send) -> None:
        self._job_id = job_id
        self._services = services
        self._interim = interim
        self._send = send
        self.pending: dict[int, Pending] = {}
        self.told = asyncio.Event()  # set each time an utterance's text was sent

    def expect(self, index: int, item_id: str, stopped_at: float) -> None:
        """Utterance `index` went to the recognizers; its speech stopped at `stopped_at`."""
        self.pending[index] = Pending(item_id, stopped_at)

    def waited_longer_than(self, seconds: float) -> bool:
        moment = time.monotonic()
        return any(moment - pending.stopped_at > seconds for pending in self.pending.values())

    async def relay(self) -> None:
        """Send each utterance's text as it comes back through the broker; look in the job's
        stored pieces too when nothing came for a while."""
        with self._services.watcher.listening(self._job_id) as events:
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), RESULT_POLL_SECONDS)
                except TimeoutError:
                    await self._look_in_store()
                    continue
                if isinstance(event, UtteranceRecognized):
                    await self.deliver(event)
                elif isinstance(event, InterimRecognized):
                    await self._interim.answered(event)

    async def _look_in_store(self) -> None:
        jobs = self._services.jobs
        for index in list(self.pending):
            piece = await jobs.piece(self._job_id, index)
            if piece is not None:
                await self.deliver(
                    UtteranceRecognized(
                        job_id=self._job_id,
                        piece_index=index,
                        text=piece.transcript.text,
                        segments=piece.transcript.segments,
                    )
                )
        if not self.pending:
            return
        job = await jobs.get(self._job_id)
        if job is None or job.status.is_final:
            status = job.status if job is not None else "deleted"
            for index in list(self.pending):
                await self.deliver(
                    UtteranceRecognized(
                        job_id=self._job_id,
                        piece_index=index,
                        text="",
                        error=JobError(code="job_ended", message=f"The session's job is {status}."),
                    )
                )

    async def give_up(self, index: int, code: str, message: str) -> None:
        """Count an utterance that will not be recognized as an empty piece, so the job still
        completes, and tell the client."""
        job = await self._services.jobs.get(self._job_id)
        if job is None:
            return
        _, told = await give_up_utterance(
            self._services.jobs, job, index, JobError(code=code, message=message), "gateway"
        )
        await self.deliver(told)

    async def deliver(self, result: UtteranceRecognized) -> None:
        pending = self.pending.pop(result.piece_index, None)
        if pending is None:
            return  # told already (a copy of the event, or found in the store first)
        self.told.set()
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

    async def watch_lag(self, limit: float) -> None:
        """Say when the oldest utterance waiting for its text has waited longer than `limit`
        (STT_LIVE_BEHIND_SECONDS) since its speech stopped; say it again only after the session
        has caught up (no utterance waiting that long)."""
        behind = False
        while True:
            now = time.monotonic()
            oldest = min((pending.stopped_at for pending in self.pending.values()), default=now)
            waited = now - oldest
            if waited <= limit:
                behind = False
                # Until the oldest would pass the limit, looking again as utterances come and go.
                await asyncio.sleep(min(oldest + limit - now, LAG_CHECK_SECONDS) + 0.001)
                continue
            if not behind:
                behind = True
                behind_error = SessionError(
                    "recognition_behind",
                    f"An utterance's text has not come back {limit:g} s after its speech"
                    " stopped (STT_LIVE_BEHIND_SECONDS): recognition is slower than that, from"
                    " queueing or the engine's own speed. Its text still comes; nothing is"
                    " dropped.",
                    kind="server_busy",
                )
                await self._send(behind_error.event())
            await asyncio.sleep(LAG_CHECK_SECONDS)

    async def drain(self, stopping: bool) -> None:
        """Before the gateway closes a session: let the texts under way arrive, for a shorter
        while if the gateway is `stopping`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_DRAIN_SECONDS if stopping else DRAIN_SECONDS):
                while self.pending:
                    self.told.clear()
                    await self.told.wait()
