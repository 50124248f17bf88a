"""Services refuse to run on a broken configuration or without their dependencies, and say why."""

import subprocess
import sys

from scripts.stack import ROOT, free_port
from shared.settings import CommonSettings
from tests.integration.conftest import as_environment


def run_service(service: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", service],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_worker_gives_up_on_an_absent_broker_with_a_message() -> None:
    port = free_port()
    result = run_service(
        "transcoder",
        STT_BROKER_URL=f"amqp://guest:s3cret@127.0.0.1:{port}/",
        STT_STARTUP_TIMEOUT_SECONDS="1",
    )
    assert result.returncode == 1
    assert f"RabbitMQ at 127.0.0.1:{port} did not answer for 1 s" in result.stderr
    assert "s3cret" not in result.stderr


def test_invalid_settings_stop_a_service_naming_the_setting() -> None:
    result = run_service("gateway", STT_DEFAULT_ENGINE="vosk")
    assert result.returncode != 0
    assert "invalid configuration" in result.stderr
    assert "STT_DEFAULT_ENGINE 'vosk' is not in STT_ENGINES" in result.stderr


def test_a_recognizer_without_its_model_stops_with_a_message(settings: CommonSettings) -> None:
    environment = as_environment(settings, whisper_model="/nonexistent/model", recognizer_slots=1)
    result = run_service("recognizer", **environment)
    assert result.returncode == 1
    assert "Whisper model '/nonexistent/model' could not be loaded" in result.stderr
