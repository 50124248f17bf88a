"""The recognizer's settings (STT_* variables), on top of those every service shares."""

import os
from pathlib import Path

from pydantic import Field

from shared.settings import CommonSettings


class RecognizerSettings(CommonSettings):
    models_dir: Path = Field(
        Path("var/models"), description="Where models joined from their parts are kept."
    )
    recognizer_slots: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Engine processes per recognizer, each with its models loaded once; by"
        " default one per CPU core.",
    )
    recognizer_cpu_threads: int = Field(1, ge=1, description="Threads per Whisper model.")
    recognizer_niceness: int = Field(
        10, ge=0, le=19, description="Scheduling niceness of the engine processes."
    )
    whisper_beam_size: int = Field(5, ge=1, description="Width of Whisper's beam search.")
    whisper_batch_size: int = Field(
        0,
        ge=0,
        description="Above 1, faster-whisper decodes that many stretches of speech at once"
        " (its batched pipeline); 0 or 1 decodes them one after another, which measured as fast"
        " on pieces of a minute and dropped fewer words.",
    )
    whisper_word_timestamps: bool = Field(True, description="Time each word, not only segments.")
    whisper_vad: bool = Field(
        True, description="Skip non-speech first; without it Whisper hears words in silence."
    )
    google_api_key: str | None = Field(
        None, description="Key for the google engine; SpeechRecognition's shared key if unset."
    )
    openai_model: str = Field("whisper-1", description="Model the openai engine asks for.")
    groq_model: str = Field("whisper-large-v3-turbo", description="Model the groq engine asks for.")
    oldest_first_after_seconds: float = Field(
        60,
        gt=0,
        description="Whole recordings go before the pieces of long ones, so short clips wait"
        " little; once a piece has waited this long, pieces and whole recordings go oldest"
        " first, so a steady stream of clips cannot hold a long recording back for ever.",
    )
    speaker_labels: bool = Field(
        True,
        description="Offer speaker labels: the speaker processes load the speaker model at"
        " start (if it cannot, the recognizer runs on without offering labels).",
    )
    speaker_processes: int = Field(
        1, ge=1, description="Speaker processes per recognizer, each with the model loaded once."
    )
    recognition_timeout_seconds: float = Field(
        600, gt=0, description="A recognition running longer is killed and its job fails."
    )
    slot_restart_pause_seconds: float = Field(
        2,
        gt=0,
        description="Before trying again to start a slot that did not start, doubled after each"
        " try; after three the slot is given up.",
    )
