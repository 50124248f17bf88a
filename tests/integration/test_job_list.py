"""GET /v1/jobs on the running services and the MongoDB wire protocol."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.integration.api import accepted_job_id, until_status
from tests.integration.conftest import FAST, RunningSystem


async def walk(client: httpx.AsyncClient, on_each_page: Any = None, **filters: str) -> list[str]:
    """Every job id the list gives, page after page."""
    listed: list[str] = []
    cursor = None
    while True:
        params = {**filters, "limit": "3", **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/v1/jobs", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        listed += [summary["job_id"] for summary in page["jobs"]]
        if on_each_page is not None:
            await on_each_page()
        cursor = page["next"]
        if cursor is None:
            return listed


async def test_paging_walks_every_job_once_while_new_ones_arrive(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    since = datetime.now(UTC).isoformat()
    async with system.client() as client:
        made = [await accepted_job_id(client, clips["wav"], engine=FAST) for _ in range(7)]
        arrived: list[str] = []

        async def another() -> None:
            arrived.append(await accepted_job_id(client, clips["wav"], engine=FAST))

        listed = await walk(client, another, created_after=since)
        everything = await walk(client, created_after=since)
    assert listed == made[::-1]
    assert everything == (made + arrived)[::-1]


async def test_the_filters_hold(system: RunningSystem, clips: dict[str, Path]) -> None:
    since = datetime.now(UTC).isoformat()
    async with system.client() as client:
        early = [await accepted_job_id(client, clips["wav"], engine=FAST) for _ in range(2)]
        middle = datetime.now(UTC).isoformat()
        sphinx = await accepted_job_id(client, clips["wav"], engine="sphinx")
        for job_id in early:
            await until_status(client, job_id)
        late = await accepted_job_id(client, clips["wav"], engine=FAST)
        before_middle = await walk(client, created_after=since, created_before=middle)
        by_engine = await walk(client, created_after=since, engine="sphinx")
        done = await walk(client, created_after=since, status="done")
        statuses = {(await client.get(f"/v1/jobs/{job_id}")).json()["status"] for job_id in done}
        summary = (await client.get("/v1/jobs", params={"limit": 1, "created_after": since})).json()
    assert before_middle == early[::-1]
    assert by_engine == [sphinx]
    assert set(done) >= set(early)
    assert statuses == {"done"}
    [first] = summary["jobs"]
    assert first["job_id"] == late
    assert "text" not in first
