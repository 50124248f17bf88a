"""The recognizer's handler as a plain function: the engine slots answer from a script and the
events go to a list, while the job store is the real one over the MongoDB wire protocol (the
counting of pieces is the part most worth testing for real)."""

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest

from recognizer.handler import RecognizeHandler
from recognizer.pool import Detect, Request
from recognizer.quality import OWN_LANGUAGE_WINDOWS, Heard
from shared.events import AudioReady, Event, MediaUploaded, PieceRecognized, TranscriptDone
from shared.faults import MediaUnavailable
from shared.jobs.models import JobStatus, new_job_id, now
from shared.jobs.options import JobOptions, SpeakerLabels
from shared.jobs.store import JobStore
from shared.media import MediaPaths
from shared.media_store import FolderStore
from shared.settings import CommonSettings
from shared.transcripts import Segment, Transcript
from tests.fakes import no_fetch
from transcoder.handler import TranscodeHandler
from transcoder.settings import TranscoderSettings

PIECE_SECONDS = 10.0
SETTINGS = CommonSettings()
WORDS = ("first part", "second part", "third part")


class ScriptedSlots:
    """Engine slots that answer each piece with the words the script gives for it."""

    size = 1
    busy = 0

    @contextlib.asynccontextmanager
    async def reserve(self) -> AsyncIterator["ScriptedSlots"]:
        yield self

    # What each piece, heard alone, sounds like; the recording as a whole sounds English.
    heard_alone: ClassVar[dict[int, Heard]] = {}
    # The pieces each question about the whole recording's language was asked of.
    sampled: ClassVar[list[list[int]]] = []

    async def transcribe(self, request: Request, _timeout: float) -> Transcript:
        index = _index(request.audio)
        words = WORDS[index] if index < len(WORDS) else f"part {index}"
        segment = Segment(start=1.0, end=3.0, text=words)
        return Transcript(text=words, language=request.options.language, segments=[segment])

    async def detect_language(self, request: Detect, _timeout: float) -> Heard:
        if request.windows == OWN_LANGUAGE_WINDOWS:
            return self.heard_alone.get(_index(request.audios[0]), Heard("en", 0.9))
        self.sampled.append([_index(audio) for audio in request.audios])
        return Heard("en", 0.7)


def _index(piece: Path) -> int:
    return int(piece.stem.split("-")[1])


class Health:
    worker = "test-host:1"

    def __init__(self) -> None:
        self.problems: list[str] = []

    async def media_missing(self, why: str) -> None:
        self.problems.append(why)

    def fine(self) -> None:
        pass


class Published(list[Event]):
    async def __call__(self, event: Event) -> None:
        self.append(event)


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
def handler(jobs: JobStore, tmp_path: Path, health: Health) -> tuple[RecognizeHandler, Published]:
    published = Published()
    store = FolderStore(MediaPaths(tmp_path))
    slots: Any = ScriptedSlots()
    noted: Any = health
    return RecognizeHandler(jobs, store, slots, published, 60, noted), published


async def cut_job(
    jobs: JobStore,
    tmp_path: Path,
    pieces: int,
    planned: bool = True,
    language: str = "en",
    speaker_labels: SpeakerLabels | None = None,
    **fields: Any,
) -> str:
    """A job whose audio is cut into `pieces`, counted if `planned`."""
    job_id = new_job_id()
    options = JobOptions(engine="faster-whisper", language=language, speaker_labels=speaker_labels)
    await jobs.create(
        job_id, options, filename="talk.mp3", size_bytes=10, content_type=None, settings=SETTINGS,
        **fields,
    )  # fmt: skip
    await jobs.advance(job_id, JobStatus.TRANSCODING, allowed_from=(JobStatus.QUEUED,))
    if planned:
        await jobs.plan_pieces(
            job_id, pieces=pieces, audio_seconds=pieces * PIECE_SECONDS, deadline_at=now()
        )
    paths = MediaPaths(tmp_path)
    for index in range(pieces):
        piece = paths.piece(job_id, index)
        piece.parent.mkdir(parents=True, exist_ok=True)
        piece.write_bytes(b"RIFF")
    return job_id


def piece(job_id: str, index: int, count: int | None) -> AudioReady:
    return AudioReady(
        job_id=job_id,
        engine="faster-whisper",
        duration_seconds=(count or index + 1) * PIECE_SECONDS,
        piece_index=index,
        piece_count=count,
        offset_seconds=index * PIECE_SECONDS,
        piece_seconds=PIECE_SECONDS,
    )


async def test_pieces_in_any_order_join_once_in_the_order_of_the_recording(
    handler: tuple[RecognizeHandler, Published], jobs: JobStore, tmp_path: Path
) -> None:
    recognize, _ = handler
    job_id = await cut_job(jobs, tmp_path, 3)
    answers = [await recognize(piece(job_id, index, 3)) for index in (2, 0, 1)]
    repeated = await recognize(piece(job_id, 0, 3))
    await jobs.note_announced(job_id)
    after_announcement = await recognize(piece(job_id, 1, 3))
    job = await jobs.get(job_id)
    assert job is not None
    assert [type(answer) for answer in answers] == [
        PieceRecognized,
        PieceRecognized,
        TranscriptDone,
    ]
    first_progress = answers[0]
    assert isinstance(first_progress, PieceRecognized)
    assert (first_progress.progress.pieces_done, first_progress.progress.pieces_total) == (1, 3)
    assert first_progress.segments[0].start == pytest.approx(21.0)
    assert job.status is JobStatus.DONE
    assert job.text == "first part second part third part"
    assert [segment.start for segment in job.segments or []] == pytest.approx([1.0, 11.0, 21.0])
    assert isinstance(repeated, TranscriptDone)  # done, but its end not yet confirmed
    assert after_announcement is None


async def test_with_auto_a_piece_clearly_in_another_language_is_decoded_in_its_own(
    handler: tuple[RecognizeHandler, Published], jobs: JobStore, tmp_path: Path
) -> None:
    recognize, _ = handler
    ScriptedSlots.heard_alone = {0: Heard("de", 0.95), 2: Heard("fr", 0.6)}
    ScriptedSlots.sampled = []
    try:
        job_id = await cut_job(jobs, tmp_path, 3, language="auto")
        for index in range(3):
            await recognize(piece(job_id, index, 3))
    finally:
        ScriptedSlots.heard_alone = {}
    job = await jobs.get(job_id)
    assert job is not None
    assert (job.status, job.detected_language) == (JobStatus.DONE, "en")
    # The whole recording was heard once, in all its pieces; the language then holds.
    assert ScriptedSlots.sampled == [[0, 1, 2]]
    # The unsure French guess of the last piece is overruled by the recording's language.
    assert [segment.language for segment in job.segments or []] == ["de", "en", "en"]


async def test_with_auto_a_piece_cut_while_converting_is_decoded_in_its_own_language_at_once(
    handler: tuple[RecognizeHandler, Published], jobs: JobStore, tmp_path: Path
) -> None:
    """Before the conversion has ended the whole recording cannot be heard: the first piece
    is decoded in the language it sounds in, even unsure, and nothing is claimed for the job
    until the total is known."""
    recognize, _ = handler
    ScriptedSlots.heard_alone = {0: Heard("de", 0.6)}
    ScriptedSlots.sampled = []
    try:
        job_id = await cut_job(jobs, tmp_path, 2, planned=False, language="auto")
        await jobs.start_pieces(job_id)
        await recognize(piece(job_id, 0, None))
        early = await jobs.get(job_id)
        sampled_early = list(ScriptedSlots.sampled)
        await jobs.plan_pieces(job_id, pieces=2, audio_seconds=20.0, deadline_at=now())
        await recognize(piece(job_id, 1, 2))
    finally:
        ScriptedSlots.heard_alone = {}
    job = await jobs.get(job_id)
    assert early is not None
    assert job is not None
    assert (early.detected_language, sampled_early) == (None, [])
    assert ScriptedSlots.sampled == [[0, 1]]
    assert (job.status, job.detected_language) == (JobStatus.DONE, "en")
    assert [segment.language for segment in job.segments or []] == ["de", "en"]


async def test_pieces_recognized_before_the_count_is_known_join_once_it_is(
    handler: tuple[RecognizeHandler, Published], jobs: JobStore, tmp_path: Path
) -> None:
    """The transcoder hands pieces out as it converts, and counts them only at the end: the
    pieces recognized before that show progress, and the last one, handed out after the
    count, joins them all."""
    recognize, _ = handler
    job_id = await cut_job(jobs, tmp_path, 3, planned=False)
    await jobs.start_pieces(job_id)
    early = [await recognize(piece(job_id, index, None)) for index in (1, 0)]
    await jobs.plan_pieces(job_id, pieces=3, audio_seconds=30.0, deadline_at=now())
    again = await recognize(piece(job_id, 0, None))  # a redelivery, after the count
    last = await recognize(piece(job_id, 2, 3))
    job = await jobs.get(job_id)
    assert job is not None
    assert [type(answer) for answer in early] == [PieceRecognized, PieceRecognized]
    progress = [answer.progress for answer in early if isinstance(answer, PieceRecognized)]
    assert [(p.pieces_done, p.pieces_total, p.eta_seconds) for p in progress] == [
        (1, None, None),
        (2, None, None),
    ]
    assert again is None
    assert isinstance(last, TranscriptDone)
    assert job.status is JobStatus.DONE
    assert job.text == "first part second part third part"
    assert job.duration_seconds == 30.0


async def test_a_missing_piece_goes_back_for_another_worker_without_failing_the_job(
    handler: tuple[RecognizeHandler, Published], jobs: JobStore, tmp_path: Path, health: Health
) -> None:
    recognize, _ = handler
    job_id = await cut_job(jobs, tmp_path, 2)
    MediaPaths(tmp_path).piece(job_id, 1).unlink()
    with pytest.raises(MediaUnavailable):
        await recognize(piece(job_id, 1, 2))
    job = await jobs.get(job_id)
    assert job is not None
    assert job.status is JobStatus.TRANSCODING
    assert health.problems


class DiesAfter(Published):
    """A publisher whose transcoder is killed after handing out `pieces` pieces."""

    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces

    async def __call__(self, event: Event) -> None:
        if len(self) == self.pieces:
            raise asyncio.CancelledError  # as the process dies, mid hand-out
        self.append(event)


async def test_a_transcoder_run_again_after_pieces_were_counted_still_joins_the_job(
    handler: tuple[RecognizeHandler, Published],
    jobs: JobStore,
    tmp_path: Path,
    long_speech: Path,
) -> None:
    recognize, _ = handler
    job_id = new_job_id()
    await jobs.create(
        job_id, JobOptions(engine="faster-whisper", language="en"), filename="talk.mp3",
        size_bytes=10, content_type=None, settings=SETTINGS,
    )  # fmt: skip
    paths = MediaPaths(tmp_path)
    paths.create_folders()
    shutil.copyfile(long_speech, paths.upload(job_id))
    settings = TranscoderSettings(media_dir=tmp_path, piece_seconds=8)
    store = FolderStore(paths)
    first, again = DiesAfter(2), Published()
    with ThreadPoolExecutor(1) as executor:
        with pytest.raises(asyncio.CancelledError):
            await TranscodeHandler(jobs, store, executor, first, settings, no_fetch)(
                MediaUploaded(job_id=job_id)
            )
        counted = [await recognize(event) for event in first if isinstance(event, AudioReady)]
        # The message comes back (the transcoder died unacknowledged): it runs again.
        await TranscodeHandler(jobs, store, executor, again, settings, no_fetch)(
            MediaUploaded(job_id=job_id)
        )
    pieces = [event for event in again if isinstance(event, AudioReady)]
    answers = [await recognize(event) for event in pieces]
    job = await jobs.get(job_id)
    assert job is not None
    assert [type(answer) for answer in counted] == [PieceRecognized, PieceRecognized]
    assert len(pieces) >= 4
    assert isinstance(answers[-1], TranscriptDone)
    assert job.status is JobStatus.DONE
    assert job.progress is not None
    assert (job.progress.pieces_done, job.progress.pieces_total) == (len(pieces), len(pieces))
    assert job.text == " ".join(
        ["first part", "second part", "third part"]
        + [f"part {index}" for index in range(3, len(pieces))]
    )
