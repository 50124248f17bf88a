"""The hostile media corpus (tests/hostile_media.py) against the probe and the conversion, as
the transcoder runs them: no file may make ffmpeg read beyond itself, or hold a transcoder long."""

import re
import time
import wave
from pathlib import Path

import pytest

from shared.ffmpeg import MEDIA_DEMUXERS
from shared.jobs.models import JobFailure
from tests.hostile_media import CORPUS, OWN_AUDIO, Scene, make_scene
from transcoder.convert import to_wav

LIMIT_SECONDS = 30


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return make_scene(tmp_path_factory.mktemp("hostile"))


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_media_fails_clearly_or_yields_only_its_own_audio(
    scene: Scene, tmp_path: Path, name: str
) -> None:
    case = CORPUS[name]
    upload = scene.uploads / ("a" * 31 + str(sorted(CORPUS).index(name) % 10))
    upload.write_bytes(case.build(scene))
    target = tmp_path / "out.wav"
    started = time.monotonic()
    message = ""
    try:
        seconds = to_wav(upload, target, timeout_seconds=LIMIT_SECONDS, max_seconds=3600)
        outcome = OWN_AUDIO
    except JobFailure as failure:
        outcome, message = failure.code.value, failure.message
    finally:
        upload.unlink()
    assert str(scene.uploads) not in message
    assert time.monotonic() - started < LIMIT_SECONDS
    assert outcome in case.outcomes, f"{name} ended {outcome}"
    if outcome == OWN_AUDIO:
        with wave.open(str(scene.clean_wav)) as clean:
            own_seconds = clean.getnframes() / clean.getframerate()
        assert seconds <= own_seconds + 1


def test_the_security_page_lists_the_accepted_formats_as_the_code_has_them() -> None:
    page = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    table = page.split("### Hostile media", 1)[1].split("Refused, among others", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith(("| audio", "| video"))]
    listed = {name for row in rows for name in re.findall(r"`([a-z0-9]+)`", row)}
    assert listed == set(MEDIA_DEMUXERS)
