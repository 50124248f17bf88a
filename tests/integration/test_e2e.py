"""The whole system: four services as real processes, real broker, real wire protocol, real speech."""

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import pytest
import srt
import webvtt

from shared.media import MediaPaths
from tests import media
from tests.integration.api import accepted_job_id, follow, submit, until_status, upload
from tests.integration.conftest import CLEANUP_DELAY_SECONDS, FAST, RunningSystem


@pytest.mark.parametrize("kind", ["mp4", "mp3", "wav"])
async def test_spoken_words_come_back(
    system: RunningSystem, clips: dict[str, Path], kind: str
) -> None:
    async with system.client() as client:
        accepted = await upload(client, clips[kind])
        assert accepted.status_code == 202
        body = accepted.json()
        assert body["status"] == "queued"
        assert accepted.headers["location"] == f"/v1/jobs/{body['job_id']}"
        job = await until_status(client, body["job_id"])
        assert job["status"] == "done", job
        assert set(media.EXPECTED_WORDS) <= media.words_of(job["text"])
        assert job["filename"] == f"speech.{kind}"
        assert job["size_bytes"] == clips[kind].stat().st_size
        assert (job["engine"], job["language"]) == ("whisper-base", "en")
        assert 2 < job["duration_seconds"] < 8
        assert set(job["stage_times"]) == {"queued", "transcoding", "recognizing", "done"}
        assert 0 < job["conversion_seconds"] < job["recognition_seconds"]

        text = await client.get(f"/v1/jobs/{body['job_id']}/transcript")
        assert text.headers["content-type"].startswith("text/plain")
        assert text.text == job["text"]
        as_json = (await client.get(f"/v1/jobs/{body['job_id']}/transcript?format=json")).json()
        assert as_json["text"] == job["text"]
        assert as_json["language"] == "en"


async def test_a_job_can_be_followed_as_server_sent_events(
    system: RunningSystem, long_speech: Path
) -> None:
    async with system.client() as client:
        job_id = await accepted_job_id(client, long_speech, engine=FAST)
        stream = await follow(client, job_id)
        finished = await follow(client, job_id)
        unknown = await client.get(f"/v1/jobs/{'0' * 32}/events")
    assert stream.content_type.startswith("text/event-stream")
    statuses = [job["status"] for job in stream.statuses]
    pipeline_order = ["queued", "transcoding", "recognizing", "done"]
    assert statuses == sorted(set(statuses), key=pipeline_order.index), statuses
    assert statuses[-1] == "done"
    assert "recognizing" in statuses
    assert stream.comments > 0
    assert set(media.EXPECTED_WORDS) <= media.words_of(stream.statuses[-1]["text"])
    assert [job["status"] for job in finished.statuses] == ["done"]
    assert finished.comments == 0
    assert unknown.status_code == 404


async def test_a_finished_job_can_be_deleted_with_its_files(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        job = await submit(client, clips["wav"], engine=FAST)
        route = f"/v1/jobs/{job['job_id']}"
        files = MediaPaths(Path(system.settings.media_dir)).of_job(job["job_id"])
        assert any(path.exists() for path in files)
        deleted = await client.delete(route)
        after = [await client.get(route), await client.get(f"{route}/transcript")]
        again = await client.delete(route)
    assert deleted.status_code == 204
    assert [response.status_code for response in after] == [404, 404]
    assert again.status_code == 404
    assert not any(path.exists() for path in files)


async def test_transcripts_come_as_subtitles_and_timed_json(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        job = await submit(client, clips["mp3"], engine=FAST)
        route = f"/v1/jobs/{job['job_id']}/transcript"
        subrip = await client.get(route, params={"format": "srt"})
        webvtt_text = await client.get(route, params={"format": "vtt"})
        as_json = (await client.get(route, params={"format": "json"})).json()
        unknown = await client.get(route, params={"format": "docx"})
    assert subrip.headers["content-type"].startswith("application/x-subrip")
    [cue] = srt.parse(subrip.text)
    assert cue.content == job["text"]
    assert webvtt_text.headers["content-type"].startswith("text/vtt")
    [vtt_cue] = webvtt.from_buffer(io.StringIO(webvtt_text.text)).captions
    assert vtt_cue.text == job["text"]
    [segment] = as_json["segments"]
    assert segment["start"] < segment["end"]
    assert [word["word"] for word in segment["words"]] == job["text"].split()
    assert 0 < as_json["confidence"] <= 1
    assert unknown.status_code == 422


@pytest.mark.parametrize("language", ["auto", "de"])
async def test_whisper_base_transcribes_german_and_detects_it(
    system: RunningSystem, tmp_path: Path, language: str
) -> None:
    speech = media.to_mp3(
        media.speak(media.GERMAN_SENTENCE, tmp_path / "de.wav", voice="de"), tmp_path / "de.mp3"
    )
    async with system.client() as client:
        job = await submit(client, speech, engine="whisper-base", language=language)
    assert job["status"] == "done", job
    assert (job["language"], job["detected_language"]) == (language, "de")
    assert set(media.GERMAN_WORDS) <= media.words_of(job["text"])


async def test_a_language_the_model_cannot_do_is_refused_naming_one_that_can(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        refused = await upload(client, clips["wav"], engine=FAST, language="de")
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "'faster-whisper' (model tiny.en) does not transcribe language 'de'" in detail
    assert "Use engine 'whisper-base'" in detail


async def test_the_sphinx_engine_can_be_chosen_per_job(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    async with system.client() as client:
        job = await submit(client, clips["wav"], engine="sphinx")
    assert job["status"] == "done", job
    assert job["engine"] == "sphinx"
    assert job["text"]
    assert job["segments"][0]["words"]


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda folder, clips: media.video_without_audio(folder / "silent.mp4"), "no_audio"),
        (
            lambda folder, clips: _write(folder / "cut.mp4", clips["mp4"].read_bytes()[:3000]),
            "undecodable_media",
        ),
        (
            lambda folder, clips: _write(
                folder / "noise.mp4", bytes((i * 7919) % 251 for i in range(9000))
            ),
            "undecodable_media",
        ),
    ],
)
async def test_media_without_usable_audio_fails_with_its_code(
    system: RunningSystem, clips: dict[str, Path], tmp_path: Path, make: Any, code: str
) -> None:
    async with system.client() as client:
        job = await submit(client, make(tmp_path, clips))
        assert job["status"] == "failed"
        assert job["error"]["code"] == code
        assert job["error"]["message"]
        transcript = await client.get(f"/v1/jobs/{job['job_id']}/transcript")
        assert transcript.status_code == 409
        assert "failed" in transcript.json()["detail"]


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "fields", "status"),
    [
        ("notes.mp4", b"these are words, not sound\n" * 50, {}, 415),
        ("picture.mp3", b"\x89PNG\r\n\x1a\n" + bytes(2000), {}, 415),
        ("empty.wav", b"", {}, 400),
        ("speech.wav", None, {"engine": "vosk"}, 422),
        ("speech.wav", None, {"engine": FAST, "language": "de"}, 422),
        ("speech.wav", None, {"engine": "sphinx", "task": "translate"}, 422),
    ],
)
async def test_bad_uploads_get_a_clear_4xx_and_keep_nothing(
    system: RunningSystem,
    clips: dict[str, Path],
    name: str,
    content: bytes | None,
    fields: dict[str, str],
    status: int,
) -> None:
    uploads = Path(system.settings.media_dir) / "uploads"
    before = set(uploads.iterdir())
    async with system.client() as client:
        body = clips["wav"].read_bytes() if content is None else content
        response = await client.post("/v1/jobs", files={"file": (name, body)}, data=fields)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)
    assert set(uploads.iterdir()) <= before


async def test_an_upload_declared_over_the_limit_gets_413_before_it_is_sent(
    system: RunningSystem, tmp_path: Path
) -> None:
    """curl, as the README uses it, asks before sending a large body (Expect: 100-continue);
    the gateway answers from the declared length, so the body never crosses the wire."""
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + bytes(6 * 1024 * 1024))
    process = await asyncio.create_subprocess_exec(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}",
        "-F", f"file=@{big}", f"{system.base_url}/v1/jobs",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, _ = await process.communicate()
    status, uploaded = output.decode().split()
    assert status == "413"
    assert int(uploaded) < 1024 * 1024


async def test_requests_without_a_file_or_for_unknown_jobs_get_4xx(system: RunningSystem) -> None:
    async with system.client() as client:
        # A url-encoded form is read like a multipart one: with neither file nor url, 422.
        assert (await client.post("/v1/jobs", data={"language": "en"})).status_code == 422
        assert (await client.get("/v1/jobs/" + "0" * 32)).status_code == 404
        assert (await client.get("/v1/jobs/" + "0" * 32 + "/transcript")).status_code == 404
        assert (await client.get("/v1/jobs/not-a-job-id")).status_code == 422
        assert (await client.get("/stt/task/" + "0" * 32)).status_code == 404
        wrong_method = await client.put("/v1/jobs/" + "0" * 32)
        assert wrong_method.status_code == 405
        assert wrong_method.headers["allow"] == "DELETE, GET"
        assert (await client.put("/v1/jobs")).headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/jobs/../../../../etc/passwd", 404),
        ("/v1/jobs/..%2F..%2F..%2F..%2Fetc%2Fpasswd", 404),
        ("/v1/jobs/..%2F..%2F..%2F..%2Fetc%2Fpasswd/transcript", 404),
        ("/v1/jobs/%2E%2E/transcript", 422),
        ("/stt/task/..", 422),
    ],
)
async def test_a_path_sent_raw_never_reaches_a_file_outside_the_jobs(
    system: RunningSystem, path: str, status: int
) -> None:
    """Sent byte for byte (httpx would tidy `..` away before sending)."""
    port = int(system.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b"root:" not in answer


async def test_the_janitor_deletes_the_files_after_the_delay(
    system: RunningSystem, clips: dict[str, Path]
) -> None:
    paths = MediaPaths(Path(system.settings.media_dir))
    async with system.client() as client:
        job = await submit(client, clips["mp3"])
    files = paths.of_job(job["job_id"])
    assert all(path.exists() for path in files)
    deadline = time.monotonic() + CLEANUP_DELAY_SECONDS + 10
    while any(path.exists() for path in files):
        assert time.monotonic() < deadline, "files still there after the cleanup delay"
        await asyncio.sleep(0.2)


async def test_tutorial_routes(system: RunningSystem, clips: dict[str, Path]) -> None:
    async with system.client() as client:
        task = await upload(client, clips["wav"], route="/stt/task", engine=FAST)
        assert task.status_code == 200
        job_id = task.json()["job_id"]
        assert task.json()["file_id"]
        pending = (await client.get(f"/stt/task/{job_id}")).json()
        # A job this short may already be done; otherwise it reads as processing.
        assert pending == {"job_id": job_id, "status": "processing"} or set(pending) == {
            "job_id",
            "text",
        }
        await until_status(client, job_id)
        finished = (await client.get(f"/stt/task/{job_id}")).json()
        assert set(finished) == {"job_id", "text"}
        assert "quarterly" in media.words_of(finished["text"])

        native = await upload(client, clips["mp4"], route="/stt/native", engine=FAST)
        assert native.status_code == 200
        assert set(native.json()) == {"job_id", "text"}
        assert set(media.EXPECTED_WORDS) <= media.words_of(native.json()["text"])


async def test_health_readiness_and_docs(system: RunningSystem) -> None:
    async with system.client() as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = (await client.get("/readyz")).json()
        assert (ready["status"], ready["broker"], ready["database"]) == (
            "ready",
            "connected",
            "answering",
        )
        assert ready["recognizers"]["faster-whisper"]["live"] == 1
        assert ready["recognizers"]["faster-whisper"]["problems"] == []
        assert (await client.get("/docs")).status_code == 200
        schema = (await client.get("/openapi.json")).json()
        assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/transcript"} <= set(
            schema["paths"]
        )
