"""Contract fuzzing: schemathesis derives requests from the gateway's OpenAPI schema and checks
that no answer is a 5xx and every answer matches the schema (all its checks, bounded in time).

`positive_data_acceptance` is left out: the generated "files" are random bytes, not media, and
the gateway rightly answers them with 415."""

import asyncio
import os
import sys
from pathlib import Path

from tests.integration.conftest import RunningSystem

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKOUT = Path(__file__).parents[2]


# Well within pytest's own timeout, so that a run that hangs still shows what it was doing.
CONTRACT_SECONDS = 100


async def test_the_gateway_keeps_its_contract(system: RunningSystem, tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.log"
    with report.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "run", f"{system.base_url}/openapi.json",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", "25",
            "--request-timeout", "90", "--workers", "2",
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
