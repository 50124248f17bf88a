"""Contract fuzzing: schemathesis derives requests from the gateway's OpenAPI schema and checks
that no answer is a 5xx and every answer matches the schema (all its checks, bounded in time).

`positive_data_acceptance` is left out: the generated "files" are random bytes, not media, and
the gateway rightly answers them with 415."""

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.conftest import ONLY_WHISPER, Database, RunningSystem, launched

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKOUT = Path(__file__).parents[2]


# Well within pytest's own timeout, so that a run that hangs still shows what it was doing.
CONTRACT_SECONDS = 100


@pytest.fixture(scope="module")
async def fresh(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningSystem]:
    """A system and a database of their own. Schemathesis follows the ids it is given: on a
    database other tests have used, it can open the event stream of a job whose workers have
    gone, which rightly stays open (with keep-alives) until the job ends, and wait on it."""
    async with launched(
        tmp_path_factory.mktemp("contract"), database.url, engines=ONLY_WHISPER
    ) as running:
        yield running


async def test_the_gateway_keeps_its_contract(fresh: RunningSystem, tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.log"
    with report.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "run", f"{fresh.base_url}/openapi.json",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", "25",
            # One worker: in threads, Python 3.11's ast.parse (which Hypothesis calls to name its
            # strategies) now and then fails with "AST constructor recursion depth mismatch".
            "--request-timeout", "90", "--workers", "1",
            stdout=output, stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,  # where it keeps its cache
            env={**os.environ, "PYTHONPATH": str(CHECKOUT),
                 "SCHEMATHESIS_HOOKS": "tests.integration.contract_hooks"},
        )  # fmt: skip
        try:
            async with asyncio.timeout(CONTRACT_SECONDS):
                returncode = await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            returncode = None
    printed = await asyncio.to_thread(report.read_text, errors="replace")
    assert returncode == 0, f"schemathesis ended with {returncode}:\n{printed[-6000:]}"
