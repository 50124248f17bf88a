"""Slot processes that keep the engines loaded and run one recognition at a time each.

A recognition stuck in native code can only be stopped by killing its process, so each slot is
its own process: a slot that timed out, crashed or was abandoned is killed and replaced, and the
others carry on. A slot is reused only after it answered its last request cleanly.
"""

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from recognizer.engines import (
    UNSTEERED,
    EngineConfig,
    EngineUnavailable,
    Steering,
    load_engines,
    read_audio,
)
from shared.faults import ServiceUnavailable
from shared.jobs import ErrorCode, JobFailure
from shared.transcripts import Transcript

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Request:
    audio: Path
    engine: str
    language: str
    steering: Steering = UNSTEERED


class SlotCrashed(Exception):
    """The slot process died while working; the job is retried by redelivery."""


def _serve(conn: Connection, engines: tuple[str, ...], config: EngineConfig, niceness: int) -> None:
    """The slot process: load the engines once, then answer requests until the pipe closes."""
    # Ctrl-C reaches the whole process group; the recognizer decides when its slots end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Recognition is batch work: on a shared machine the gateway, broker and database answer first.
    os.nice(niceness)
    try:
        loaded = load_engines(engines, config)
    except EngineUnavailable as error:
        conn.send(("unavailable", str(error)))
        return
    # The pipe breaks when the recognizer is gone (it may have been killed): end quietly then.
    with contextlib.suppress(EOFError, BrokenPipeError):
        conn.send(("ready", None))
        while True:
            request: Request = conn.recv()
            try:
                transcript = loaded[request.engine].transcribe(
                    read_audio(request.audio), request.language, request.steering
                )
            except ServiceUnavailable as error:
                conn.send(("retry", str(error)))
            except Exception as error:
                conn.send(("error", f"{type(error).__name__}: {error}"))
            else:
                conn.send(("ok", transcript))


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


class Slot:
    def __init__(self, engines: tuple[str, ...], config: EngineConfig, niceness: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process: BaseProcess = context.Process(
            target=_serve, args=(child_conn, engines, config, niceness), daemon=True
        )
        self._process.start()
        child_conn.close()

    async def wait_ready(self) -> None:
        kind, detail = await self._receive(START_TIMEOUT_SECONDS)
        if kind != "ready":
            raise EngineUnavailable(detail)

    async def run(self, request: Request, timeout_seconds: float) -> Transcript:
        self._conn.send(request)
        kind, detail = await self._receive(timeout_seconds)
        if kind == "retry":
            raise ServiceUnavailable(detail)
        if kind != "ok":
            raise JobFailure(
                ErrorCode.RECOGNITION_FAILED,
                f"The speech engine could not process the audio: {detail}",
            )
        assert isinstance(detail, Transcript)
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


class SlotPool:
    def __init__(
        self, size: int, engines: tuple[str, ...], config: EngineConfig, niceness: int = 0
    ) -> None:
        self._size = size
        self._engines = engines
        self._config = config
        self._niceness = niceness
        self._idle: asyncio.Queue[Slot] = asyncio.Queue()
        self._all: set[Slot] = set()

    async def start(self) -> None:
        """Start every slot and wait until each has its engines loaded; raises EngineUnavailable."""
        for _ in range(self._size):
            self._add(Slot(self._engines, self._config, self._niceness))
        try:
            await asyncio.gather(*(slot.wait_ready() for slot in self._all))
        except BaseException:
            self.close()
            raise
        log.info(
            "%d slot(s) ready with %s (pid %d)", self._size, ", ".join(self._engines), os.getpid()
        )

    def _add(self, slot: Slot) -> None:
        self._all.add(slot)
        self._idle.put_nowait(slot)

    async def transcribe(self, request: Request, timeout_seconds: float) -> Transcript:
        slot = await self._idle.get()
        try:
            transcript = await slot.run(request, timeout_seconds)
        except (JobFailure, ServiceUnavailable):
            # The slot answered cleanly: it is fit for the next request.
            self._idle.put_nowait(slot)
            raise
        except TimeoutError as error:
            await self._replace(slot)
            raise JobFailure(
                ErrorCode.TIMEOUT, f"Recognition took longer than {timeout_seconds:.0f} s."
            ) from error
        except BaseException:
            await self._replace(slot)
            raise
        self._idle.put_nowait(slot)
        return transcript

    async def _replace(self, slot: Slot) -> None:
        # Waiting for the killed process to be reaped is blocking: keep it off the event loop.
        await asyncio.to_thread(slot.kill)
        self._all.discard(slot)
        replacement = Slot(self._engines, self._config, self._niceness)
        self._all.add(replacement)
        await replacement.wait_ready()
        self._idle.put_nowait(replacement)

    def close(self) -> None:
        for slot in self._all:
            slot.close()
        self._all.clear()
