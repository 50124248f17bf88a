"""What produced a transcript: the engine and model (with the SHA-256 of its weights), the
versions of the software that ran it, and the decoding settings of the job."""

from pydantic import BaseModel, Field


class ModelProvenance(BaseModel):
    """What a recognizer loaded for one engine; the same for every job that engine does there."""

    engine: str
    model: str = Field(description="The model's name, or the provider's model for online engines.")
    model_package: str | None = Field(
        None, description="The package the model's files came from, with its version."
    )
    model_sha256: str | None = Field(
        None,
        description="SHA-256 of the model's weights as loaded (`model.bin` for Whisper; for"
        " Sphinx, its language folder's files in name order), computed when the engine was"
        " loaded; None for online engines.",
    )
    faster_whisper_version: str | None = None
    ctranslate2_version: str | None = None
    service_version: str | None = None


class Decoding(BaseModel):
    """How a job's audio was decoded: the recognizer's settings and what the job asked for.
    Settings an engine has no use for are None."""

    task: str = "transcribe"
    language: str = Field(description="The language the engine was told: a code, or `auto`.")
    beam_size: int | None = None
    vad_filter: bool | None = None
    temperature: float | None = Field(
        None, description="As asked; None for Whisper's own schedule (0, raised as decoding fails)."
    )
    word_timestamps: bool | None = None
    batch_size: int | None = None
    prompt: str | None = None
    hotwords: list[str] = Field(default_factory=list)


class Provenance(ModelProvenance):
    decoding: Decoding
