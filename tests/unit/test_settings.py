import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from shared.settings import CommonSettings


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
