"""What a job asks of recognition, as one value: the gateway builds it once from the request
(gateway/choices.py), the job store keeps its fields flat in the job document under these names
(JobBase inherits them), the interim passes of live sessions carry it (shared/events.py), and the
recognizer hands it whole to the engine.

An option is added here, in the engines that read it, and in a test; what clients send for it is
read in gateway/choices.py. Stored documents keep these names: a field that is renamed or moved
needs a step that reads documents written before, and a test with one."""

from pydantic import BaseModel, Field

from shared.engines import TRANSCRIBE

MAX_SPEAKERS = 20


class SpeakerLabels(BaseModel):
    """What a job asks of speaker labelling: how many speakers to find (None leaves it to the
    clustering), and the names of known speakers whose clips are kept beside the job."""

    speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS, description="Exactly this many.")
    min_speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS)
    max_speakers: int | None = Field(None, ge=1, le=MAX_SPEAKERS)
    names: list[str] = Field(
        default_factory=list, description="Known speakers, one reference clip each."
    )


class JobOptions(BaseModel):
    """What a job asks of recognition: the engine, the language, and how to steer them."""

    language: str
    engine: str
    prompt: str | None = Field(None, description="Text to steer the engine (Whisper only).")
    temperature: float | None = Field(
        None, description="Sampling temperature (Whisper only); None for Whisper's own schedule."
    )
    task: str = Field(
        TRANSCRIBE, description="`transcribe`, or `translate` into English (multilingual Whisper)."
    )
    hotwords: list[str] = Field(
        default_factory=list,
        description="Names and terms the engine should expect (Whisper: hotwords; online"
        " engines: a prompt).",
    )
    speaker_labels: SpeakerLabels | None = Field(
        None, description="Set when the job labels who speaks (`diarize`); None when it does not."
    )

    @property
    def hotwords_text(self) -> str | None:
        return ", ".join(self.hotwords) or None

    def in_language(self, language: str) -> "JobOptions":
        """The same options, decoding in `language` (a piece's own, or the one detected)."""
        return self.model_copy(update={"language": language})
