"""Every setting is listed in .env.example and the README, so none is a secret."""

from pathlib import Path

import pytest

from gateway.settings import GatewaySettings
from janitor.settings import JanitorSettings
from recognizer.settings import RecognizerSettings
from transcoder.settings import TranscoderSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (GatewaySettings, TranscoderSettings, RecognizerSettings, JanitorSettings)
NAMES = sorted({f"STT_{name.upper()}" for kind in SETTINGS for name in kind.model_fields})


@pytest.mark.parametrize("document", [".env.example", "README.md"])
def test_every_setting_is_documented(document: str) -> None:
    text = (ROOT / document).read_text()
    assert [name for name in NAMES if name not in text] == []
