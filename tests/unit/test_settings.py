import logging

import pytest
from aio_pika.exceptions import AMQPConnectionError
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from gateway.settings import GatewaySettings
from shared.broker import Broker
from shared.faults import StartupError
from shared.jobs.store import JobStore
from shared.settings import CommonSettings
from shared.worker import connected


def test_defaults_run_embedded() -> None:
    settings = CommonSettings(_env_file=None)
    assert str(settings.broker_url) == "amqp://guest:guest@127.0.0.1:5672/"
    assert str(settings.mongodb_url) == "mongodb://127.0.0.1:27017"
    assert settings.engines == ("faster-whisper", "whisper-base", "sphinx")
    assert settings.default_engine == "whisper-base"


def test_environment_is_read_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STT_ENGINES", " sphinx , faster-whisper ")
    monkeypatch.setenv("STT_MAX_UPLOAD_BYTES", "1000")
    monkeypatch.setenv("STT_API_KEYS", "k-one, k-two,")
    settings = GatewaySettings(_env_file=None)
    assert settings.engines == ("sphinx", "faster-whisper")
    assert settings.default_engine == "sphinx"  # the first, while whisper-base is not served
    assert settings.max_upload_bytes == 1000
    assert [key.get_secret_value() for key in settings.api_keys] == ["k-one", "k-two"]
    assert "k-one" not in repr(settings)


def test_empty_secrets_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STT_API_KEYS", "")
    monkeypatch.setenv("STT_CALLBACK_SECRET", "")
    settings = GatewaySettings(_env_file=None)
    assert settings.api_keys == ()
    assert settings.callback_secret is None


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("STT_ENGINES", "vosk", "STT_ENGINES must name"),
        ("STT_DEFAULT_ENGINE", "nope", "not in STT_ENGINES"),
        ("STT_DEFAULT_LANGUAGE", "klingon", "STT_DEFAULT_LANGUAGE"),
        ("STT_NAMESPACE", "Bad Name", "namespace"),
        ("STT_CLEANUP_DELAY_SECONDS", "0", "cleanup_delay_seconds"),
    ],
)
def test_bad_configuration_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=complaint):
        CommonSettings(_env_file=None)


@pytest.mark.parametrize("unreachable", ["broker", "database"])
async def test_start_up_logs_where_it_connects_but_never_a_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, unreachable: str
) -> None:
    async def refused(_self: object) -> None:
        raise (AMQPConnectionError if unreachable == "broker" else ConnectionFailure)("refused")

    async def fine(_self: object) -> None:
        return None

    monkeypatch.setattr(Broker, "connect", refused if unreachable == "broker" else fine)
    monkeypatch.setattr(Broker, "close", fine)
    monkeypatch.setattr(JobStore, "ping", refused if unreachable == "database" else fine)
    settings = CommonSettings(
        _env_file=None,
        broker_url="amqp://stt:broker-pw@rabbit.internal:5672/stt",
        mongodb_url="mongodb://stt:mongo-pw@db.internal:27017/?authSource=admin",
        startup_timeout_seconds=0.1,
    )
    with pytest.raises(StartupError) as failure, caplog.at_level(logging.INFO):
        async with connected(settings):
            pass
    told = f"{failure.value}\n{caplog.text}"
    assert ("rabbit.internal:5672/stt" if unreachable == "broker" else "db.internal:27017") in told
    assert "broker-pw" not in told
    assert "mongo-pw" not in told
