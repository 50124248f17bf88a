from pathlib import Path

import pytest

from shared.media import MediaPaths

JOB_ID = "0123456789abcdef0123456789abcdef"


def test_a_job_s_files_stay_in_the_media_folder(tmp_path: Path) -> None:
    paths = MediaPaths(tmp_path)
    for path in (*paths.of_job(JOB_ID), paths.piece(JOB_ID, 3), paths.whole_audio(JOB_ID)):
        assert path.resolve().is_relative_to(tmp_path.resolve())
        assert JOB_ID in str(path)


@pytest.mark.parametrize(
    "crafted", ["../../etc/passwd", "..", "", "a" * 31, JOB_ID + "/..", JOB_ID.upper(), "/tmp/x"]
)
def test_a_crafted_id_never_becomes_a_path(tmp_path: Path, crafted: str) -> None:
    paths = MediaPaths(tmp_path)
    for build in (paths.upload, paths.audio_folder, lambda job: paths.piece(job, 0)):
        with pytest.raises(ValueError, match="not a job id"):
            build(crafted)
