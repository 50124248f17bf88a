"""Every setting is listed in .env.example and in the generated settings reference, so none is
a secret, and the reference is the one the settings classes give today."""

from pathlib import Path

import pytest

from scripts import settings_reference

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(f"STT_{name.upper()}" for name in settings_reference.readers())


@pytest.mark.parametrize("document", [".env.example", "docs/configuration.md"])
def test_every_setting_is_documented(document: str) -> None:
    text = (ROOT / document).read_text()
    assert [name for name in NAMES if name not in text] == []


def test_the_settings_reference_is_current() -> None:
    page = settings_reference.PAGE.read_text()
    assert settings_reference.with_reference(page) == page, (
        "run python -m scripts.settings_reference"
    )


def test_the_reference_names_who_reads_each_setting() -> None:
    reference = settings_reference.reference()
    gateway_only = reference.split("### Read by the gateway", 1)[1].split("###", 1)[0]
    assert "`STT_API_KEYS`" in gateway_only
    assert "`STT_PIECE_SECONDS`" not in gateway_only
    every_service = reference.split("### Read by every service", 1)[1].split("###", 1)[0]
    assert "`STT_BROKER_URL`" in every_service
    assert "`STT_RECOGNIZER_SLOTS`" not in every_service


def test_a_setting_without_a_description_stops_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from recognizer.settings import RecognizerSettings

    field = RecognizerSettings.model_fields["whisper_beam_size"]
    monkeypatch.setattr(field, "description", None)
    with pytest.raises(settings_reference.UndocumentedSetting, match="STT_WHISPER_BEAM_SIZE"):
        settings_reference.reference()
