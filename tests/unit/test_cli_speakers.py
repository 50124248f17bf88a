"""The CLI's --speakers: what it sends, and what it refuses before sending anything."""

from pathlib import Path

import pytest

from cli.__main__ import parse, upload_fields


@pytest.mark.parametrize(
    ("arguments", "fields"),
    [
        ([], {}),
        (["--speakers"], {"diarize": "true"}),
        (["--speakers", "3"], {"diarize": "true", "speakers": "3"}),
        (
            ["--engine", "sphinx", "--speakers", "2"],
            {"engine": "sphinx", "diarize": "true", "speakers": "2"},
        ),
    ],
)
def test_speakers_asks_for_labels_with_or_without_a_count(
    tmp_path: Path, arguments: list[str], fields: dict[str, str]
) -> None:
    recording = tmp_path / "call.mp3"
    recording.write_bytes(b"ID3")
    assert upload_fields(parse(["transcribe", str(recording), *arguments])) == fields


@pytest.mark.parametrize("count", ["0", "21", "two"])
def test_a_count_outside_1_to_20_is_a_usage_error(
    tmp_path: Path, count: str, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = tmp_path / "call.mp3"
    recording.write_bytes(b"ID3")
    with pytest.raises(SystemExit) as exit_status:
        parse(["transcribe", str(recording), "--speakers", count])
    assert exit_status.value.code == 2
    assert "number of speakers from 1 to 20" in capsys.readouterr().err
