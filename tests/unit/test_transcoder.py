"""The transcoder's handler as a plain function: the job store and the publisher are stand-ins,
the media folder, ffmpeg and the cutting are real."""

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from shared.events import AudioReady, Event, JobFailed, MediaUploaded
from shared.faults import BrokerUnavailable
from shared.jobs.models import ErrorCode, JobStatus
from shared.media import MediaPaths
from shared.media_store import FolderStore
from tests import media
from tests.fakes import FakeJobs, a_job, no_fetch
from transcoder.convert import to_wav
from transcoder.handler import TranscodeHandler
from transcoder.pieces import FIRST_PIECE_SECONDS, plan_pieces
from transcoder.settings import TranscoderSettings

JOB_ID = "c" * 32


class Published(list[Event]):
    async def __call__(self, event: Event) -> None:
        self.append(event)


@pytest.fixture
async def handler(tmp_path: Path) -> AsyncIterator[tuple[TranscodeHandler, FakeJobs, Published]]:
    jobs, published = FakeJobs(), Published()
    settings = TranscoderSettings(media_dir=tmp_path, piece_seconds=8)
    with ThreadPoolExecutor(2) as executor:
        store = FolderStore(MediaPaths(tmp_path))
        transcode = TranscodeHandler(jobs, store, executor, published, settings, no_fetch)  # type: ignore[arg-type]
        yield transcode, jobs, published


def uploaded(tmp_path: Path, jobs: FakeJobs, source: Path) -> None:
    target = MediaPaths(tmp_path).upload(JOB_ID)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    jobs.add(a_job(JOB_ID, JobStatus.QUEUED))


async def test_a_long_recording_is_handed_out_in_contiguous_pieces(
    handler: tuple[TranscodeHandler, FakeJobs, Published], tmp_path: Path, long_speech: Path
) -> None:
    transcode, jobs, published = handler
    uploaded(tmp_path, jobs, long_speech)
    assert await transcode(MediaUploaded(job_id=JOB_ID)) is None
    pieces = [event for event in published if isinstance(event, AudioReady)]
    job = jobs.jobs[JOB_ID]
    paths = MediaPaths(tmp_path)
    assert len(pieces) == len(published) >= 3
    assert [piece.piece_index for piece in pieces] == list(range(len(pieces)))
    # The first pieces went out while the rest was being converted, before the count was known.
    assert pieces[0].piece_count is None
    assert pieces[-1].piece_count == len(pieces)
    assert {piece.piece_count for piece in pieces} == {None, len(pieces)}
    assert all(piece.topic == f"audio.piece.{piece.engine}" for piece in pieces)
    lengths = [piece.piece_seconds or 0.0 for piece in pieces]
    ends = [piece.offset_seconds + length for piece, length in zip(pieces, lengths, strict=True)]
    assert [piece.offset_seconds for piece in pieces[1:]] == pytest.approx(ends[:-1])
    assert sum(lengths) == pytest.approx(pieces[-1].duration_seconds)
    assert only_pieces_in(paths.audio_folder(JOB_ID)) == len(pieces)
    assert job.status is JobStatus.TRANSCODING
    assert job.progress is not None
    assert job.progress.pieces_total == len(pieces)
    assert job.duration_seconds == pytest.approx(sum(lengths))
    assert job.conversion_seconds is not None
    assert job.audio_ready_at is not None


def cuts(published: list[Event]) -> list[tuple[float, float | None]]:
    return [
        (event.offset_seconds, event.piece_seconds)
        for event in published
        if isinstance(event, AudioReady)
    ]


def only_pieces_in(folder: Path) -> int:
    """How many pieces `folder` holds; it holds nothing else (no spool of the whole audio)."""
    names = [path.name for path in folder.iterdir()]
    assert all(name.startswith("piece-") and name.endswith(".wav") for name in names), names
    return len(names)


async def test_the_last_pieces_are_cut_for_the_slots_of_the_fleet_once_and_for_all(
    tmp_path: Path, long_speech: Path
) -> None:
    """Cut for the slots serving the engine when the job is first converted; a transcoder
    that converts it again cuts the same pieces, whatever the fleet has become."""
    jobs, published = FakeJobs(), Published()
    settings = TranscoderSettings(media_dir=tmp_path, piece_seconds=20)
    fleet_slots = [3]

    async def slots_serving(_engine: str) -> int:
        return fleet_slots[0]

    store = FolderStore(MediaPaths(tmp_path))
    with ThreadPoolExecutor(1) as executor:
        fake: Any = jobs
        transcode = TranscodeHandler(
            fake, store, executor, published, settings, no_fetch, slots_serving
        )
        uploaded(tmp_path, jobs, long_speech)
        await transcode(MediaUploaded(job_id=JOB_ID))
        first = cuts(published)
        published.clear()
        fleet_slots[0] = 1
        await jobs.advance(JOB_ID, JobStatus.QUEUED, allowed_from=(JobStatus.TRANSCODING,))
        await transcode(MediaUploaded(job_id=JOB_ID))
    again = cuts(published)
    wav = tmp_path / "whole.wav"
    await asyncio.to_thread(to_wav, long_speech, wav, 60, 3600)
    planned = plan_pieces(wav, 20, first_seconds=FIRST_PIECE_SECONDS, slots=3)
    assert first == again == [(piece.offset_seconds, piece.seconds) for piece in planned]
    assert planned != plan_pieces(wav, 20, first_seconds=FIRST_PIECE_SECONDS, slots=1)


async def test_a_short_clip_goes_out_whole(
    handler: tuple[TranscodeHandler, FakeJobs, Published], tmp_path: Path, clips: dict[str, Path]
) -> None:
    transcode, jobs, published = handler
    uploaded(tmp_path, jobs, clips["mp4"])
    await transcode(MediaUploaded(job_id=JOB_ID))
    [whole] = published
    assert isinstance(whole, AudioReady)
    assert (whole.piece_index, whole.piece_count) == (0, 1)
    assert whole.topic == f"audio.ready.{whole.engine}"


async def test_media_without_audio_fails_the_job_and_hands_out_nothing(
    handler: tuple[TranscodeHandler, FakeJobs, Published], tmp_path: Path
) -> None:
    transcode, jobs, published = handler
    uploaded(tmp_path, jobs, media.video_without_audio(tmp_path / "silent.mp4"))
    announced = await transcode(MediaUploaded(job_id=JOB_ID))
    assert isinstance(announced, JobFailed)
    assert announced.code == "no_audio"
    assert jobs.jobs[JOB_ID].status is JobStatus.FAILED
    assert published == []


async def test_a_redelivery_after_the_pieces_went_out_does_nothing(
    handler: tuple[TranscodeHandler, FakeJobs, Published], tmp_path: Path, clips: dict[str, Path]
) -> None:
    transcode, jobs, published = handler
    uploaded(tmp_path, jobs, clips["wav"])
    await transcode(MediaUploaded(job_id=JOB_ID))
    await jobs.advance(JOB_ID, JobStatus.RECOGNIZING, allowed_from=(JobStatus.TRANSCODING,))
    again = await transcode(MediaUploaded(job_id=JOB_ID))
    assert again is None
    assert len(published) == 1


class CancelledOnFirstPiece(Published):
    """The user cancels the job as its first piece goes out."""

    def __init__(self, jobs: FakeJobs) -> None:
        super().__init__()
        self.jobs = jobs

    async def __call__(self, event: Event) -> None:
        self.append(event)
        await self.jobs.fail(JOB_ID, ErrorCode.CANCELLED, "Cancelled by its owner.")


async def test_a_cancelled_job_gets_no_further_pieces(tmp_path: Path, long_speech: Path) -> None:
    jobs = FakeJobs()
    published = CancelledOnFirstPiece(jobs)
    settings = TranscoderSettings(media_dir=tmp_path, piece_seconds=8)
    with ThreadPoolExecutor(1) as executor:
        store = FolderStore(MediaPaths(tmp_path))
        transcode = TranscodeHandler(jobs, store, executor, published, settings, no_fetch)  # type: ignore[arg-type]
        uploaded(tmp_path, jobs, long_speech)
        await transcode(MediaUploaded(job_id=JOB_ID))
    assert [event.piece_index for event in published if isinstance(event, AudioReady)] == [0]
    assert jobs.jobs[JOB_ID].audio_ready_at is None
    only_pieces_in(MediaPaths(tmp_path).audio_folder(JOB_ID))


class BrokerGoesAway(Published):
    async def __call__(self, event: Event) -> None:
        if self:
            raise BrokerUnavailable("publishing: the broker is away (test)")
        self.append(event)


async def test_a_transcoder_that_fails_mid_hand_out_keeps_no_copy_of_the_audio(
    tmp_path: Path, long_speech: Path
) -> None:
    jobs, published = FakeJobs(), BrokerGoesAway()
    settings = TranscoderSettings(media_dir=tmp_path, piece_seconds=8)
    with ThreadPoolExecutor(1) as executor:
        store = FolderStore(MediaPaths(tmp_path))
        transcode = TranscodeHandler(jobs, store, executor, published, settings, no_fetch)  # type: ignore[arg-type]
        uploaded(tmp_path, jobs, long_speech)
        with pytest.raises(BrokerUnavailable):  # retried later from the upload
            await transcode(MediaUploaded(job_id=JOB_ID))
    # In a shared folder the pieces are the store (written again by the retry); no more.
    assert only_pieces_in(MediaPaths(tmp_path).audio_folder(JOB_ID)) >= 2


async def test_a_recording_longer_than_it_declares_fails_as_too_long_at_the_limit(
    tmp_path: Path,
) -> None:
    jobs, published = FakeJobs(), Published()
    settings = TranscoderSettings(media_dir=tmp_path, piece_seconds=8, max_audio_seconds=20)
    with ThreadPoolExecutor(1) as executor:
        fake: Any = jobs
        store = FolderStore(MediaPaths(tmp_path))
        transcode = TranscodeHandler(fake, store, executor, published, settings, no_fetch)
        uploaded(tmp_path, jobs, media.lying_about_its_length(tmp_path / "lying.mp3", 120))
        announced = await transcode(MediaUploaded(job_id=JOB_ID))
    assert isinstance(announced, JobFailed)
    assert announced.code == "too_long"
    assert jobs.jobs[JOB_ID].audio_ready_at is None
    # What went out before the limit was reached ends before it.
    assert all(offset + (seconds or 0) <= 20 for offset, seconds in cuts(published))
