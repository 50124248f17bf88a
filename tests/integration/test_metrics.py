"""Metrics and structured logs of the running services, read as Prometheus and a log collector
would read them."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.stack import free_port
from tests.integration.api import submit
from tests.integration.conftest import ONLY_WHISPER, RunningSystem, launched


@pytest.fixture(scope="module")
async def observed(
    mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[RunningSystem, dict[str, int]]]:
    """Workers with a metrics port each; the transcoder logs JSON lines."""
    ports = {service: free_port() for service in ("transcoder", "recognizer")}
    async with launched(
        tmp_path_factory.mktemp("metrics"),
        mongodb_url,
        services=("gateway", "janitor"),
        recognizer_slots=1,
        engines=ONLY_WHISPER,
    ) as running:
        running.start(
            "transcoder", STT_METRICS_PORT=str(ports["transcoder"]), STT_LOG_FORMAT="json"
        )
        running.start("recognizer", STT_METRICS_PORT=str(ports["recognizer"]))
        await running.until_at_work(("transcoder", "recognizer"))
        yield running, ports


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(value for (each, tags), value in found.items() if each == name and wanted <= tags)


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


async def test_after_a_job_the_gateway_and_every_worker_have_counted_it(
    observed: tuple[RunningSystem, dict[str, int]], clips: dict[str, Path]
) -> None:
    system, ports = observed
    workers = {service: f"http://127.0.0.1:{port}/metrics" for service, port in ports.items()}
    before = {service: await scrape(url) for service, url in workers.items()}
    gateway_before = await scrape(f"{system.base_url}/metrics")
    async with system.client() as client:
        job = await submit(client, clips["wav"])
    # The gateway counts a finished job when its announcement arrives.
    finished_before = total(gateway_before, "stt_jobs_finished_total", status="done")
    async with asyncio.timeout(30):
        while True:
            gateway = await scrape(f"{system.base_url}/metrics")
            if total(gateway, "stt_jobs_finished_total", status="done") > finished_before:
                break
            await asyncio.sleep(0.05)
    after = {service: await scrape(url) for service, url in workers.items()}

    def moved(where: str, name: str, **labels: str) -> float:
        old = gateway_before if where == "gateway" else before[where]
        new = gateway if where == "gateway" else after[where]
        return total(new, name, **labels) - total(old, name, **labels)

    assert job["status"] == "done"
    assert moved("gateway", "stt_jobs_accepted_total", engine="faster-whisper") == 1
    assert moved("gateway", "stt_jobs_finished_total", status="done") == 1
    assert moved("gateway", "stt_upload_accept_seconds_count") == 1
    assert any(name == "stt_queue_messages" for name, _ in gateway)
    assert moved("transcoder", "stt_conversion_seconds_count") == 1
    assert moved("transcoder", "stt_queue_wait_seconds_count") == 1
    assert moved("recognizer", "stt_audio_recognized_seconds_total") == pytest.approx(
        job["duration_seconds"], abs=0.1
    )
    assert moved("recognizer", "stt_recognition_seconds_per_audio_second_count") == 1
    assert total(after["recognizer"], "stt_slots", state="total") == 1


async def test_json_logs_carry_the_service_the_job_and_the_durations(
    observed: tuple[RunningSystem, dict[str, int]], clips: dict[str, Path]
) -> None:
    system, _ = observed
    async with system.client() as client:
        job = await submit(client, clips["mp3"])
    lines = [
        json.loads(line)
        for line in (system.log_dir / "transcoder.log").read_text().splitlines()
        if line.startswith("{")
    ]
    about_job = [line for line in lines if line.get("job_id") == job["job_id"]]
    timed = [line for line in about_job if "duration_seconds" in line]
    assert lines
    assert {line["service"] for line in lines} == {"transcoder"}
    assert about_job
    assert all(line["event"] == "media.uploaded" for line in about_job)
    assert timed[0]["audio_seconds"] == pytest.approx(job["duration_seconds"], abs=0.1)
