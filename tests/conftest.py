from pathlib import Path

import pytest

from tests import media


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same spoken sentence as WAV, MP3 and MP4."""
    folder = tmp_path_factory.mktemp("clips")
    wav = media.speak(media.SENTENCE, folder / "speech.wav")
    return {
        "wav": wav,
        "mp3": media.to_mp3(wav, folder / "speech.mp3"),
        "mp4": media.to_mp4(wav, folder / "speech.mp4"),
    }


@pytest.fixture(scope="session")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 40 s of speech as MP3: recognition takes seconds, long enough to interrupt or follow."""
    folder = tmp_path_factory.mktemp("long")
    wav = media.speak(media.PARAGRAPH, folder / "long.wav")
    return media.to_mp3(wav, folder / "long.mp3")
