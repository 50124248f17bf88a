"""Every curl example of the README and the API page, run as written against the real stack
with its default engine, and what each prints held to what the page shows it printing."""

import asyncio
import re
import subprocess
from pathlib import Path

import httpx

from tests import media
from tests.doc_examples import DOCUMENTS, JOB_ID, bind, examples_in, fill_in, mismatch
from tests.integration.api import until_status
from tests.integration.conftest import RunningSystem, stack_fixture

DOCUMENTED_BASE_URL = "http://127.0.0.1:8000"
# The sentence of the README's espeak-ng example: the recordings the API page names say it too.
SENTENCE = "Please send the quarterly report to the finance team before Friday."
COMMAND_TIMEOUT_SECONDS = 120
JOB_TIMEOUT_SECONDS = 180


# The stack as `make run` starts it: every offline engine, Whisper base the default.
documented = stack_fixture("documented")


def recordings(folder: Path) -> Path:
    """The media files the examples name and no example makes, saying the README's sentence."""
    wav = media.speak(SENTENCE, folder / "said.wav")
    media.to_mp4(wav, folder / "talk.mp4")
    media.to_mp3(wav, folder / "talk.mp3")
    return folder


def run(line: str, folder: Path) -> str:
    done = subprocess.run(
        ["bash", "-c", line],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{line!r} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


async def until_finished(client: httpx.AsyncClient, job_ids: list[str]) -> None:
    """Wait, as a reader would before asking, until every job made so far has ended."""
    for job_id in job_ids:
        await until_status(client, job_id, within=JOB_TIMEOUT_SECONDS)


async def test_every_curl_example_prints_what_the_documentation_shows(
    documented: RunningSystem, tmp_path: Path
) -> None:
    folder = await asyncio.to_thread(recordings, tmp_path)
    wrong: list[str] = []
    ran = 0
    async with documented.client() as client:
        made: list[str] = []
        for document in DOCUMENTS:
            jobs: dict[str, str] = {}  # made-up ids to real ones, per page
            for example in examples_in(document):
                for command in example.commands:
                    if command.is_curl and not command.shown:
                        wrong.append(f"{command.where}: {command.line} shows no output")
                    if not command.sends:
                        await until_finished(client, made)
                    line = fill_in(command.line, jobs).replace(
                        DOCUMENTED_BASE_URL, documented.base_url
                    )
                    printed = await asyncio.to_thread(run, line, folder)
                    ran += command.is_curl
                    shown = "\n".join(command.shown)
                    bind(shown, printed, jobs)
                    new = [job for job in JOB_ID.findall(printed) if job not in made]
                    made += new
                    if new:
                        jobs["<job_id>"] = new[-1]
                    problem = mismatch(fill_in(shown, jobs), printed)
                    if problem is not None:
                        flat = re.sub(r"\s+", " ", printed)[:600]
                        wrong.append(f"{command.where}: {line}\n    {problem}\n    printed: {flat}")
    assert ran >= 15, f"only {ran} curl examples found"
    assert not wrong, "\n".join(wrong)
