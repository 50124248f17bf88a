"""The recognizer's handler with speaker labels: the speaker process is stood in for by a script
(the library has tests of its own), the job store is the real one over the MongoDB wire protocol.
What is tested is the pipeline's part: voices found where each piece is recognized and stored
with it, every piece's voices clustered at once at the join, provisional labels on progress, the
known speakers' clips reaching the labelling, and a recognizer without the model handing work
back."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from recognizer.handler import RecognizeHandler
from shared.events import PieceRecognized, TranscriptDone
from shared.faults import ServiceUnavailable
from shared.jobs.models import JobStatus, SpeakerReference, StoredVoice
from shared.jobs.options import SpeakerLabels
from shared.jobs.store import JobStore
from shared.media import MediaPaths
from shared.media_store import FolderStore
from shared.transcripts import SpeakerTalk, Transcript
from tests.integration.test_recognize_handler import (
    Health,
    Published,
    ScriptedSlots,
    cut_job,
    piece,
)

# Who speaks in each piece: the first and last piece are one voice, the middle one another.
VOICE_OF_PIECE = (b"A", b"B", b"A")


class ScriptedLabeller:
    """Voices from the script; labels by the embedding each segment's voice has, in order of
    first appearance, as the library does; a known speaker named by an exact embedding match."""

    def __init__(self) -> None:
        self.labelled: list[tuple[int, list[float]]] = []

    async def voices(
        self, audio: Path, transcript: Transcript, offset_seconds: float
    ) -> list[StoredVoice]:
        embedding = VOICE_OF_PIECE[int(audio.stem.split("-")[1])]
        return [
            StoredVoice(
                start=s.start + offset_seconds, end=s.end + offset_seconds, embedding=embedding
            )
            for s in transcript.segments
        ]

    async def label(
        self,
        jobs: JobStore,
        job_id: str,
        transcript: Transcript,
        voices: Sequence[StoredVoice],
        speaker_labels: SpeakerLabels,
    ) -> Transcript:
        self.labelled.append((len(voices), [voice.start for voice in voices]))
        references = await jobs.speaker_references(job_id)
        named = {VOICE_OF_PIECE[int(r.pcm.decode())]: r.name for r in references}
        labels_of: dict[bytes, str] = {}
        segments = []
        for segment in transcript.segments:
            [voice] = [v for v in voices if v.start == segment.start]
            key = voice.embedding
            label = labels_of.setdefault(key, named.get(key) or f"S{len(labels_of) + 1}")
            segments.append(segment.model_copy(update={"speaker": label}))
        talk = [
            SpeakerTalk(speaker=label, talk_seconds=2.0, segments=1) for label in labels_of.values()
        ]
        return transcript.model_copy(update={"segments": segments, "speakers": talk})


@pytest.fixture
def labeller() -> ScriptedLabeller:
    return ScriptedLabeller()


def labelling_handler(
    jobs: JobStore, tmp_path: Path, labeller: ScriptedLabeller | None
) -> tuple[RecognizeHandler, Published]:
    published = Published()
    slots: Any = ScriptedSlots()
    noted: Any = Health()
    stand_in: Any = labeller
    store = FolderStore(MediaPaths(tmp_path))
    return RecognizeHandler(jobs, store, slots, published, 60, noted, stand_in), published


async def test_voices_of_every_piece_are_clustered_together_at_the_join(
    jobs: JobStore, tmp_path: Path, labeller: ScriptedLabeller
) -> None:
    recognize, _ = labelling_handler(jobs, tmp_path, labeller)
    job_id = await cut_job(jobs, tmp_path, 3, speaker_labels=SpeakerLabels(speakers=2))
    answers = [await recognize(piece(job_id, index, 3)) for index in (1, 0, 2)]
    assert [type(answer) for answer in answers] == [
        PieceRecognized,
        PieceRecognized,
        TranscriptDone,
    ]
    stored = await jobs.pieces(job_id)
    assert [p.voices[0].start for p in stored if p.voices] == pytest.approx([1.0, 11.0, 21.0])
    # The join saw the three pieces' voices at once, in the order of the recording.
    count, starts = labeller.labelled[-1]
    assert (count, starts) == (3, [1.0, 11.0, 21.0])
    job = await jobs.get(job_id)
    assert job is not None
    assert job.status is JobStatus.DONE
    assert [segment.speaker for segment in job.segments or []] == ["S1", "S2", "S1"]
    assert [talk.speaker for talk in job.speakers or []] == ["S1", "S2"]
    # Progress carried labels as they stood: the middle piece came first, so it was S1 then.
    first, second = answers[0], answers[1]
    assert isinstance(first, PieceRecognized)
    assert isinstance(second, PieceRecognized)
    assert [s.speaker for s in first.segments] == ["S1"]
    assert [(s.start, s.speaker) for s in second.segments] == [(1.0, "S1")]


async def test_a_single_piece_is_labelled_and_a_known_speaker_named(
    jobs: JobStore, tmp_path: Path, labeller: ScriptedLabeller
) -> None:
    recognize, _ = labelling_handler(jobs, tmp_path, labeller)
    # The scripted clip "0" sounds like the voice of piece 0.
    reference = SpeakerReference(name="Ann", pcm=b"0")
    job_id = await cut_job(
        jobs,
        tmp_path,
        1,
        speaker_labels=SpeakerLabels(names=["Ann"]),
        speaker_references=[reference],
    )
    whole = piece(job_id, 0, 1).model_copy(update={"piece_seconds": None})
    assert isinstance(await recognize(whole), TranscriptDone)
    job = await jobs.get(job_id)
    assert job is not None
    assert [segment.speaker for segment in job.segments or []] == ["Ann"]
    assert job.speakers == [SpeakerTalk(speaker="Ann", talk_seconds=2.0, segments=1)]


async def test_a_job_without_labels_is_not_labelled(
    jobs: JobStore, tmp_path: Path, labeller: ScriptedLabeller
) -> None:
    recognize, _ = labelling_handler(jobs, tmp_path, labeller)
    job_id = await cut_job(jobs, tmp_path, 2)
    for index in (0, 1):
        await recognize(piece(job_id, index, 2))
    job = await jobs.get(job_id)
    assert job is not None
    assert job.speakers is None
    assert labeller.labelled == []
    assert all(p.voices is None for p in await jobs.pieces(job_id))


async def test_a_recognizer_without_the_speaker_model_hands_the_work_back(
    jobs: JobStore, tmp_path: Path
) -> None:
    recognize, published = labelling_handler(jobs, tmp_path, None)
    job_id = await cut_job(jobs, tmp_path, 2, speaker_labels=SpeakerLabels())
    with pytest.raises(ServiceUnavailable, match="does not label speakers"):
        await recognize(piece(job_id, 0, 2))
    job = await jobs.get(job_id)
    assert job is not None
    assert job.status is JobStatus.TRANSCODING
    assert published == []
