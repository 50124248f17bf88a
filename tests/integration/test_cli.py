"""The `stt` console script against the running services."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import srt

from tests import media
from tests.integration.conftest import FAST, RunningSystem

STT = Path(sys.executable).parent / "stt"


async def stt(system: RunningSystem, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "STT_URL": system.base_url}
    return await asyncio.to_thread(
        subprocess.run,
        [str(STT), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


async def test_two_files_become_srt_files_beside_them_and_are_listed(
    system: RunningSystem, clips: dict[str, Path], tmp_path: Path
) -> None:
    first, second = tmp_path / "first.mp3", tmp_path / "second.mp4"
    first.write_bytes(clips["mp3"].read_bytes())
    second.write_bytes(clips["mp4"].read_bytes())
    done = await stt(
        system, "transcribe", str(first), str(second), "--format", "srt", "--engine", FAST
    )
    listed = await stt(system, "jobs", "--limit", "5")
    assert done.returncode == 0, done.stderr
    for made in (tmp_path / "first.srt", tmp_path / "second.srt"):
        [subtitle] = list(srt.parse(made.read_text()))
        assert set(media.EXPECTED_WORDS) <= media.words_of(subtitle.content)
    assert listed.returncode == 0, listed.stderr
    assert "first.mp3" in listed.stdout
    assert "second.mp4" in listed.stdout


async def test_a_bad_file_fails_with_its_message_and_the_good_one_still_comes_out(
    system: RunningSystem, clips: dict[str, Path], tmp_path: Path
) -> None:
    silent = media.video_without_audio(tmp_path / "silent.mp4")
    result = await stt(
        system,
        "transcribe",
        str(silent),
        str(clips["wav"]),
        "--output-dir",
        str(tmp_path / "out"),
        "--engine",
        FAST,
    )
    assert result.returncode == 1
    assert "silent.mp4" in result.stderr
    assert "no audio track" in result.stderr
    assert set(media.EXPECTED_WORDS) <= media.words_of(
        (tmp_path / "out" / "speech.txt").read_text()
    )


async def test_one_transcript_goes_to_stdout_and_usage_errors_exit_2(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    printed = await stt(system, "transcribe", str(clips["wav"]), "-o", "-", "--engine", FAST)
    two_to_stdout = await stt(system, "transcribe", str(clips["wav"]), str(clips["mp3"]), "-o", "-")
    missing = await stt(system, "transcribe", "/no/such/file.mp3")
    assert printed.returncode == 0, printed.stderr
    assert set(media.EXPECTED_WORDS) <= media.words_of(printed.stdout)
    assert (two_to_stdout.returncode, missing.returncode) == (2, 2)
    assert "no such file" in missing.stderr
