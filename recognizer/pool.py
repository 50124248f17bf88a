"""Slot processes that keep the engines loaded and run one request at a time each.

A recognition stuck in native code can only be stopped by killing its process, so each slot is
its own process: a slot that timed out, crashed or was abandoned is killed and replaced, and the
others carry on. A slot is reused only after it answered its last request cleanly.

What a slot does with a request is the pool's `work`, a function run in the slot process:
recognition (`recognize`, here) by default; speaker labelling hands its own
(`recognizer.speaker_processes`), so the pool knows nothing of speakers.
"""

import asyncio
import collections
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from recognizer.engines import (
    DetectsLanguage,
    Engine,
    EngineConfig,
    EngineUnavailable,
    OnlineEngineError,
    load_engines,
    read_audio,
)
from recognizer.provenance import describe_model, provenance
from recognizer.quality import DETECTION_WINDOWS, Heard, majority_language
from shared.faults import ServiceUnavailable
from shared.jobs.models import ErrorCode, JobFailure
from shared.jobs.options import JobOptions
from shared.provenance import ModelProvenance
from shared.transcripts import Transcript

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 120
REPLACE_ATTEMPTS = 3
REPLACE_PAUSE_SECONDS = 2.0


@dataclass(frozen=True)
class Request:
    """Transcribe one WAV file as `options` ask, in `options.language`."""

    audio: Path
    options: JobOptions


@dataclass(frozen=True)
class Detect:
    """Tell the language most of the speech in `audios` is in (None if nobody speaks)."""

    audios: tuple[Path, ...]
    engine: str
    windows: int = DETECTION_WINDOWS
    """Windows of speech heard in all, shared among the audios."""


@dataclass(frozen=True)
class Loaded:
    """What a slot process loaded as it started, for its work to use."""

    engines: dict[str, Engine]
    models: dict[str, ModelProvenance]
    config: EngineConfig


Work = Callable[[Loaded, Any], Any]
"""What a slot does with each request: run in the slot process, so a module-level function."""


class SlotCrashed(Exception):
    """The slot process died while working; the job is retried by redelivery."""


class NoSlots(Exception):
    """Every slot was lost and none could be started again: the work goes back to the queue."""


def _serve(
    conn: Connection, engines: tuple[str, ...], config: EngineConfig, niceness: int, work: Work
) -> None:
    """The slot process: load the engines once, then answer requests until the pipe closes."""
    # Ctrl-C reaches the whole process group; the recognizer decides when its slots end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Recognition is batch work: on a shared machine the gateway, broker and database answer first.
    os.nice(niceness)
    try:
        # Models hashed once here, from the bytes on disk, rather than trusted from a record.
        loaded = Loaded(
            load_engines(engines, config),
            {name: describe_model(name, config) for name in engines},
            config,
        )
    except EngineUnavailable as error:
        conn.send(("unavailable", str(error)))
        return
    # The pipe breaks when the recognizer is gone (it may have been killed): end quietly then.
    with contextlib.suppress(EOFError, BrokenPipeError):
        conn.send(("ready", loaded.models))
        while True:
            request = conn.recv()
            try:
                answer = work(loaded, request)
            except ServiceUnavailable as error:
                conn.send(("retry", str(error)))
            except OnlineEngineError as error:  # the provider's own words: fit for the job
                conn.send(("refused", str(error)))
            except Exception as error:
                conn.send(("error", f"{type(error).__name__}: {error}"))
            else:
                conn.send(("ok", answer))
            _return_freed_memory()


def _return_freed_memory() -> None:
    """Hand the heap memory a recognition freed back to the system. Without it a slot keeps
    what its largest piece needed, and a recognizer grows with the longest audio it has seen."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: nothing to trim with
    _LIBC = None


def recognize(loaded: Loaded, request: Request | Detect) -> Transcript | Heard | None:
    """A recognition slot's work: a transcript, stamped with what made it, or a language."""
    if isinstance(request, Request):
        options = request.options
        transcript = loaded.engines[options.engine].transcribe(read_audio(request.audio), options)
        made_by = provenance(loaded.models[options.engine], loaded.config, options)
        return transcript.model_copy(update={"provenance": made_by})
    engine = loaded.engines[request.engine]
    assert isinstance(engine, DetectsLanguage)
    windows = max(1, request.windows // len(request.audios))
    return majority_language(
        [
            vote
            for audio in request.audios
            for vote in engine.language_votes(read_audio(audio), windows)
        ]
    )


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


class Slot:
    def __init__(
        self, engines: tuple[str, ...], config: EngineConfig, niceness: int, work: Work
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process: BaseProcess = context.Process(
            target=_serve, args=(child_conn, engines, config, niceness, work), daemon=True
        )
        self._process.start()
        child_conn.close()

    async def wait_ready(self) -> dict[str, ModelProvenance]:
        """What the slot loaded for each engine, once it is ready."""
        kind, detail = await self._receive(START_TIMEOUT_SECONDS)
        if kind != "ready":
            raise EngineUnavailable(detail)
        models: dict[str, ModelProvenance] = detail
        return models

    async def run(self, request: object, timeout_seconds: float) -> Any:
        self._conn.send(request)
        kind, detail = await self._receive(timeout_seconds)
        if kind == "retry":
            raise ServiceUnavailable(detail)
        if kind == "refused":
            raise JobFailure(ErrorCode.RECOGNITION_FAILED, detail)
        if kind != "ok":
            # The exception's text may name files and internals: the log has it, the job not.
            log.error("a slot could not process %s: %s", request, detail)
            raise JobFailure(
                ErrorCode.RECOGNITION_FAILED,
                "The speech engine could not process the audio; it may be damaged. The"
                " operators can find the cause in the recognizer's log.",
            )
        return detail

    async def _receive(self, timeout_seconds: float) -> tuple[str, Any]:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        fd = self._conn.fileno()
        loop.add_reader(fd, _resolve, readable)
        try:
            await asyncio.wait_for(readable, timeout_seconds)
        finally:
            loop.remove_reader(fd)
        try:
            message: tuple[str, Any] = self._conn.recv()
        except (EOFError, OSError) as error:
            raise SlotCrashed(f"slot process {self._process.pid} died") from error
        return message

    def kill(self) -> None:
        self._process.kill()
        self._process.join(timeout=5)
        self._conn.close()

    def close(self) -> None:
        """Let the process end by itself (its pipe closes), killing it only if it does not."""
        self._conn.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self.kill()


class Reservation:
    """One slot, held for one piece of work; the slot goes back to the pool when it is done."""

    def __init__(self, pool: "SlotPool", slot: Slot) -> None:
        self._pool = pool
        self._slot: Slot | None = slot

    async def transcribe(self, request: Request, timeout_seconds: float) -> Transcript:
        transcript = await self._run(request, timeout_seconds)
        assert isinstance(transcript, Transcript)
        return transcript

    async def detect_language(self, request: Detect, timeout_seconds: float) -> Heard | None:
        heard = await self._run(request, timeout_seconds)
        assert heard is None or isinstance(heard, Heard)
        return heard

    async def ask(self, request: object, timeout_seconds: float) -> Any:
        """Any other request, for a pool whose work is not recognition (speaker labelling)."""
        return await self._run(request, timeout_seconds)

    async def _run(self, request: object, timeout_seconds: float) -> Any:
        if self._slot is None:
            raise NoSlots("the slot of this reservation was lost")
        try:
            return await self._slot.run(request, timeout_seconds)
        except (JobFailure, ServiceUnavailable):
            raise  # the slot answered cleanly: it is fit for the next request
        except TimeoutError as error:
            self._slot = await self._pool.replace(self._slot)
            raise JobFailure(
                ErrorCode.TIMEOUT, f"Recognition took longer than {timeout_seconds:.0f} s."
            ) from error
        except BaseException:
            self._slot = await self._pool.replace(self._slot)
            raise

    def release(self) -> None:
        if self._slot is not None:
            self._pool.release(self._slot)


class SlotPool:
    """Slots handed out one piece of work at a time, to whoever waited longest. (A recognizer
    takes no more messages than it has slots, whole recordings first, so its work seldom waits
    here: only while a lost slot is being replaced.)"""

    def __init__(
        self,
        size: int,
        engines: tuple[str, ...],
        config: EngineConfig,
        niceness: int = 0,
        on_empty: Callable[[str], None] = lambda _why: None,
        replace_pause_seconds: float = REPLACE_PAUSE_SECONDS,
        work: Work = recognize,
        purpose: str | None = None,
    ) -> None:
        self.size = size
        self._work = work
        # What the log calls the processes; engine slots by default.
        self._purpose = purpose
        self._engines = engines
        self._config = config
        self._niceness = niceness
        self._on_empty = on_empty
        self._replace_pause_seconds = replace_pause_seconds
        self._idle: list[Slot] = []
        self._waiting: collections.deque[asyncio.Future[Slot]] = collections.deque()
        self._all: set[Slot] = set()
        self.models: dict[str, ModelProvenance] = {}
        """What the slots loaded for each engine (the same in each)."""

    async def start(self) -> None:
        """Start every slot and wait until each has its engines loaded; raises EngineUnavailable."""
        slots = [
            Slot(self._engines, self._config, self._niceness, self._work) for _ in range(self.size)
        ]
        self._all.update(slots)
        try:
            loaded = await asyncio.gather(*(slot.wait_ready() for slot in slots))
        except BaseException:
            self.close()
            raise
        self.models = loaded[0]
        self._idle.extend(slots)
        ready = self._purpose or f"engine slot(s), with {', '.join(self._engines)},"
        log.info("%d %s ready (pid %d)", self.size, ready, os.getpid())

    @property
    def busy(self) -> int:
        return self.size - len(self._idle)

    @contextlib.asynccontextmanager
    async def reserve(self) -> AsyncIterator[Reservation]:
        """Wait for a free slot and hold it for the body of the `async with`."""
        reservation = Reservation(self, await self._acquire())
        try:
            yield reservation
        finally:
            reservation.release()

    async def transcribe(self, request: Request, timeout_seconds: float) -> Transcript:
        async with self.reserve() as slot:
            return await slot.transcribe(request, timeout_seconds)

    async def _acquire(self) -> Slot:
        if self.size == 0:
            raise NoSlots("every slot was lost")
        # A free slot means nobody is waiting: release() hands slots to waiters first.
        if self._idle:
            return self._idle.pop()
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())
            else:
                self._waiting.remove(waiter)
            raise

    def release(self, slot: Slot) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self._idle.append(slot)

    async def replace(self, slot: Slot) -> Slot | None:
        """Kill `slot` and start a fresh one in its place, models loaded, trying again after a
        pause if it cannot start. None when it never does: the pool is a slot smaller then, and
        once it has none left it says so (`on_empty`) and turns every waiter away."""
        # Waiting for the killed process to be reaped is blocking: keep it off the event loop.
        await asyncio.to_thread(slot.kill)
        self._all.discard(slot)
        pause = self._replace_pause_seconds
        for attempt in range(1, REPLACE_ATTEMPTS + 1):
            replacement = Slot(self._engines, self._config, self._niceness, self._work)
            self._all.add(replacement)
            try:
                await replacement.wait_ready()
                return replacement
            except (EngineUnavailable, SlotCrashed, TimeoutError) as error:
                log.error(
                    "a new slot did not start (try %d of %d): %s", attempt, REPLACE_ATTEMPTS, error
                )
                await asyncio.to_thread(replacement.kill)
                self._all.discard(replacement)
            if attempt < REPLACE_ATTEMPTS:
                await asyncio.sleep(pause)
                pause *= 2
        self.size -= 1
        log.error("a slot is lost for good; %d left", self.size)
        if self.size == 0:
            while self._waiting:
                waiter = self._waiting.popleft()
                if not waiter.done():
                    waiter.set_exception(NoSlots("every slot was lost"))
            self._on_empty(f"no slot could be started in {REPLACE_ATTEMPTS} tries")
        return None

    def close(self) -> None:
        for slot in self._all:
            slot.close()
        self._all.clear()
