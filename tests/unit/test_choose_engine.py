import pytest

from gateway.choices import RefusedChoice, choose_engine_and_language, choose_task
from gateway.settings import GatewaySettings


@pytest.fixture
def settings() -> GatewaySettings:
    return GatewaySettings(_env_file=None)


def test_defaults_apply_when_the_client_names_none(settings: GatewaySettings) -> None:
    assert choose_engine_and_language(settings, None, None) == ("whisper-base", "en")
    assert choose_task(settings, None, None) == "transcribe"
    assert choose_engine_and_language(settings, "sphinx", "EN") == ("sphinx", "en")


@pytest.mark.parametrize(
    ("engine", "language", "field", "complaint"),
    [
        ("vosk", None, "engine", "Unknown engine 'vosk'"),
        (
            "faster-whisper",
            "de",
            "language",
            "does not transcribe language 'de'; it does en. Use engine 'whisper-base'",
        ),
        ("sphinx", "klingon", "language", "does not transcribe language 'klingon'"),
        ("", None, "engine", "Unknown engine ''"),
        (None, "", "language", "does not transcribe language ''"),
    ],
)
def test_jobs_no_engine_can_do_are_refused_naming_the_field(
    settings: GatewaySettings, engine: str | None, language: str | None, field: str, complaint: str
) -> None:
    with pytest.raises(RefusedChoice) as refused:
        choose_engine_and_language(settings, engine, language)
    assert refused.value.status_code == 422
    assert refused.value.field == field
    assert complaint in refused.value.detail


def test_whisper_base_takes_other_languages_and_auto(settings: GatewaySettings) -> None:
    assert choose_engine_and_language(settings, "whisper-base", "de") == ("whisper-base", "de")
    assert choose_engine_and_language(settings, "whisper-base", "auto") == ("whisper-base", "auto")


def test_a_multilingual_model_accepts_other_languages_and_auto() -> None:
    settings = GatewaySettings(_env_file=None, whisper_model="/models/whisper-base")
    for language in ("de", "auto"):
        chosen = choose_engine_and_language(settings, "faster-whisper", language)
        assert chosen == ("faster-whisper", language)
    assert choose_task(settings, "faster-whisper", "translate") == "translate"


@pytest.mark.parametrize("engine", [None, "whisper-base", "openai", "groq"])
def test_the_multilingual_whisper_engines_translate(
    settings: GatewaySettings, engine: str | None
) -> None:
    assert choose_task(settings, engine, "translate") == "translate"


@pytest.mark.parametrize(
    ("engine", "task", "complaint"),
    [
        ("faster-whisper", "translate", "'faster-whisper' (model tiny.en) cannot translate"),
        ("sphinx", "translate", "'sphinx' cannot translate: it only transcribes"),
        ("google", "translate", "Use engine 'whisper-base' or 'openai' or 'groq'"),
        (None, "summarise", "Unknown task 'summarise'"),
        (None, "", "Unknown task ''"),
    ],
)
def test_a_task_the_engine_cannot_do_is_refused(
    settings: GatewaySettings, engine: str | None, task: str, complaint: str
) -> None:
    with pytest.raises(RefusedChoice) as refused:
        choose_task(settings, engine, task)
    assert (refused.value.status_code, refused.value.field) == (422, "task")
    assert complaint in refused.value.detail
