import pytest
from fastapi import HTTPException

from gateway.settings import GatewaySettings
from gateway.submit import choose_engine_and_language


@pytest.fixture
def settings() -> GatewaySettings:
    return GatewaySettings(_env_file=None)


def test_defaults_apply_when_the_client_names_none(settings: GatewaySettings) -> None:
    assert choose_engine_and_language(settings, None, None) == ("faster-whisper", "en")
    assert choose_engine_and_language(settings, "sphinx", "EN") == ("sphinx", "en")


@pytest.mark.parametrize(
    ("engine", "language", "complaint"),
    [
        ("vosk", None, "Unknown engine 'vosk'"),
        (None, "de", "does not transcribe language 'de'; it does en. Use engine 'whisper-base'"),
        ("sphinx", "klingon", "does not transcribe language 'klingon'"),
        ("", None, "Unknown engine ''"),
        (None, "", "does not transcribe language ''"),
    ],
)
def test_jobs_no_engine_can_do_are_refused(
    settings: GatewaySettings, engine: str | None, language: str | None, complaint: str
) -> None:
    with pytest.raises(HTTPException) as refused:
        choose_engine_and_language(settings, engine, language)
    assert refused.value.status_code == 422
    assert complaint in refused.value.detail


def test_whisper_base_takes_other_languages_and_auto(settings: GatewaySettings) -> None:
    assert choose_engine_and_language(settings, "whisper-base", "de") == ("whisper-base", "de")
    assert choose_engine_and_language(settings, "whisper-base", "auto") == ("whisper-base", "auto")


def test_a_multilingual_model_accepts_other_languages_and_auto() -> None:
    settings = GatewaySettings(_env_file=None, whisper_model="/models/whisper-base")
    assert choose_engine_and_language(settings, None, "de") == ("faster-whisper", "de")
    assert choose_engine_and_language(settings, None, "auto") == ("faster-whisper", "auto")
