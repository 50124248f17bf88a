"""Speaker labelling in the recognizer, around the speaker library (`recognizer.speaker_model`,
`recognizer.speaker_clusters` and `recognizer.speaker_turns`).

The speaker model runs in speaker processes of its own (one per recognizer by default), not in
every slot: a process holding it costs a couple of hundred MB, paid once per recognizer rather
than once per core. They form a `SlotPool` with no engines, so they are killed and replaced as
engine slots are. A piece's voices are computed here, where its audio is, while its engine slot
stays reserved (so a recognizer never keeps more processes busy than it has slots); they are
stored with the piece, and the join clusters the voices of every piece at once, whichever
recognizer heard each.

Only the speaker processes import that library.
"""

import asyncio
import logging
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recognizer.engines import EngineConfig
from recognizer.pool import Loaded, SlotPool
from shared.jobs.models import StoredVoice
from shared.jobs.options import SpeakerLabels
from shared.jobs.store import JobStore
from shared.transcripts import Segment, Transcript

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadSpeakerModel:
    """Load the speaker model now (at start), so a recognizer only offers what it can do."""


@dataclass(frozen=True)
class FindVoices:
    """The voices of one piece (16 kHz mono WAV) and its segments, timed from the recording's
    start (the piece starts at `offset_seconds`)."""

    audio: Path
    segments: tuple[Segment, ...]
    offset_seconds: float


@dataclass(frozen=True)
class EmbedClips:
    """One embedding per known speaker's clip (16 kHz mono 16-bit PCM)."""

    clips: tuple[bytes, ...]


@dataclass(frozen=True)
class LabelSpeakers:
    transcript: Transcript
    voices: tuple[StoredVoice, ...]
    speaker_labels: SpeakerLabels
    known: tuple[tuple[str, tuple[float, ...]], ...] = ()


SPEAKER_WORK = (LoadSpeakerModel, FindVoices, EmbedClips, LabelSpeakers)
SpeakerWork = LoadSpeakerModel | FindVoices | EmbedClips | LabelSpeakers

# In the speaker process: the model, loaded on the first request.
_loaded: list[Any] = []


def speaker_process_pool(
    size: int, config: EngineConfig, niceness: int, on_empty: Callable[[str], None]
) -> SlotPool:
    """Processes that load no engine and do speaker work."""
    purpose = "speaker-labelling process(es), which serve no engine,"
    return SlotPool(size, (), config, niceness, on_empty, work=_serve, purpose=purpose)


def _serve(_loaded: Loaded, request: SpeakerWork) -> Any:
    return answer(request)


def answer(request: SpeakerWork) -> Any:
    """Do `request` (in the speaker process)."""
    from recognizer.speaker_clusters import SpeakerCount
    from recognizer.speaker_model import SpeakerModel, Voice, shifted_voices
    from recognizer.speaker_turns import label_speakers

    if not _loaded:
        _loaded.append(SpeakerModel())
    model: SpeakerModel = _loaded[0]
    if isinstance(request, FindVoices):
        found = model.voices(_samples_of(request.audio), request.segments)
        return [
            StoredVoice(start=voice.start, end=voice.end, embedding=_packed(voice.embedding))
            for voice in shifted_voices(found, request.offset_seconds)
        ]
    if isinstance(request, EmbedClips):
        return [model.embed(_pcm_samples(clip)) for clip in request.clips]
    if isinstance(request, LabelSpeakers):
        voices = [
            Voice(voice.start, voice.end, _unpacked(voice.embedding)) for voice in request.voices
        ]
        asked = request.speaker_labels
        count = SpeakerCount(asked.speakers, asked.min_speakers, asked.max_speakers)
        return label_speakers(request.transcript, voices, count, dict(request.known))
    return None


def _packed(embedding: tuple[float, ...]) -> bytes:
    return np.asarray(embedding, dtype="<f4").tobytes()


def _unpacked(embedding: bytes) -> tuple[float, ...]:
    return tuple(float(x) for x in np.frombuffer(embedding, dtype="<f4"))


def _samples_of(audio: Path) -> np.ndarray[Any, np.dtype[np.float32]]:
    with wave.open(str(audio), "rb") as source:
        return _pcm_samples(source.readframes(source.getnframes()))


def _pcm_samples(pcm: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


class SpeakerLabeller:
    """The recognizer's side of its speaker process: each call waits for the process without
    blocking the event loop, and fails the job (JobFailure) as a recognition would."""

    def __init__(self, pool: SlotPool, timeout_seconds: float) -> None:
        self._pool = pool
        self._timeout_seconds = timeout_seconds

    async def _ask(self, request: SpeakerWork) -> Any:
        async with self._pool.reserve() as process:
            return await process.ask(request, self._timeout_seconds)

    def close(self) -> None:
        self._pool.close()

    async def load(self) -> None:
        await self._ask(LoadSpeakerModel())

    async def voices(
        self, audio: Path, transcript: Transcript, offset_seconds: float
    ) -> list[StoredVoice]:
        voices: list[StoredVoice] = await self._ask(
            FindVoices(audio, tuple(transcript.segments), offset_seconds)
        )
        return voices

    async def label(
        self,
        jobs: JobStore,
        job_id: str,
        transcript: Transcript,
        voices: Sequence[StoredVoice],
        speaker_labels: SpeakerLabels,
    ) -> Transcript:
        """`transcript` with every segment and word labelled, known speakers named."""
        known = await self._known(jobs, job_id) if speaker_labels.names else ()
        labelled: Transcript = await self._ask(
            LabelSpeakers(transcript, tuple(voices), speaker_labels, known)
        )
        return labelled

    async def _known(
        self, jobs: JobStore, job_id: str
    ) -> tuple[tuple[str, tuple[float, ...]], ...]:
        """The known speakers' embeddings, computed by the first piece that needs them."""
        references = await jobs.speaker_references(job_id)
        if any(reference.embedding is None for reference in references):
            embeddings = await self._ask(EmbedClips(tuple(r.pcm for r in references)))
            references = [
                reference.model_copy(update={"embedding": list(embedding)})
                for reference, embedding in zip(references, embeddings, strict=True)
            ]
            await jobs.note_reference_embeddings(job_id, references)
        return tuple((r.name, tuple(r.embedding or ())) for r in references)


async def start_speaker_labeller(pool: SlotPool, timeout_seconds: float) -> SpeakerLabeller | None:
    """The speaker processes, the model loaded in each; None (and the pool closed) when it
    cannot load here: the recognizer then works on without offering labels."""
    try:
        await pool.start()
        labeller = SpeakerLabeller(pool, timeout_seconds)
        await asyncio.gather(*(labeller.load() for _ in range(pool.size)))
    except Exception as error:  # whatever keeps the model from loading: run on without labels
        log.warning("speaker labels are off: the speaker model did not load: %s", error)
        await asyncio.to_thread(pool.close)
        return None
    log.info("speaker model loaded: this recognizer labels speakers")
    return labeller
