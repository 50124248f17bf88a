"""What a live session's client chose with `session.update` (GA shape) or
`transcription_session.update` (beta shape), checked (the engine and language as an upload's
are), and how the session describes itself back."""

from dataclasses import dataclass, replace
from typing import Any

from gateway.choices import RefusedChoice, check_served, choose_options
from gateway.live.events import SessionError
from gateway.live.turns import ServerVad
from gateway.services import Services
from gateway.upload import MAX_FIELDS_BYTES
from shared.engines import named_engine
from shared.jobs.options import JobOptions

INPUT_RATES = (8000, 16000, 24000, 44100, 48000)
# A prompt is stored with the job and read for every utterance: as long as an upload's form
# fields together may be, at most.
MAX_PROMPT_BYTES = MAX_FIELDS_BYTES

DEFAULT_VAD = ServerVad()


@dataclass(frozen=True)
class LiveConfig:
    """What the client chose with `session.update` (or `transcription_session.update`)."""

    rate: int = 24000
    vad: ServerVad | None = DEFAULT_VAD
    model: str = "whisper-1"
    """What the client asked for; the session runs the engine it names, or the default."""
    engine: str = ""
    language: str = ""
    prompt: str | None = None

    @property
    def options(self) -> JobOptions:
        """What the session's job and utterances ask of recognition."""
        return JobOptions(engine=self.engine, language=self.language, prompt=self.prompt)

    def ga_session(self, job_id: str) -> dict[str, Any]:
        return {
            "id": job_id,
            "object": "realtime.transcription_session",
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": self.rate},
                    "transcription": self._transcription(),
                    "turn_detection": self._turn_detection(),
                    "noise_reduction": None,
                }
            },
            "include": [],
        }

    def beta_session(self, job_id: str) -> dict[str, Any]:
        return {
            "id": job_id,
            "object": "realtime.transcription_session",
            "input_audio_format": "pcm16",
            "input_audio_transcription": self._transcription(),
            "turn_detection": self._turn_detection(),
            "input_audio_noise_reduction": None,
            "include": [],
        }

    def _transcription(self) -> dict[str, Any]:
        return {"model": self.model, "language": self.language, "prompt": self.prompt or ""}

    def _turn_detection(self) -> dict[str, Any] | None:
        if self.vad is None:
            return None
        return {
            "type": "server_vad",
            "threshold": self.vad.threshold,
            "prefix_padding_ms": self.vad.prefix_padding_ms,
            "silence_duration_ms": self.vad.silence_duration_ms,
        }


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SessionError("invalid_value", f"{name} must be an object.", name)
    return value


def _number(settings: dict[str, Any], name: str, low: float, high: float, default: float) -> float:
    value = settings.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SessionError(
            "invalid_value", f"{name} must be a number from {low:g} to {high:g}.", name
        )
    return float(value)


def _turn_detection(value: Any) -> ServerVad | None:
    if value is None:
        return None
    given = _object(value, "turn_detection")
    if given.get("type") not in ("server_vad", "semantic_vad"):
        raise SessionError(
            "invalid_value", "turn_detection.type must be 'server_vad' (or null).", "turn_detection"
        )
    defaults = ServerVad()
    return ServerVad(
        threshold=_number(given, "threshold", 0.0, 1.0, defaults.threshold),
        prefix_padding_ms=round(
            _number(given, "prefix_padding_ms", 0, 5000, defaults.prefix_padding_ms)
        ),
        silence_duration_ms=round(
            _number(given, "silence_duration_ms", 100, 10000, defaults.silence_duration_ms)
        ),
    )


def _rate(value: Any) -> int:
    given = _object(value, "format")
    if given.get("type", "audio/pcm") != "audio/pcm":
        raise SessionError(
            "invalid_value",
            f"Only audio/pcm (16-bit, mono) is taken here, not {given.get('type')!r}.",
            "format",
        )
    rate = given.get("rate", 24000)
    if rate not in INPUT_RATES:
        raise SessionError(
            "invalid_value",
            f"format.rate must be one of {', '.join(map(str, INPUT_RATES))}.",
            "format",
        )
    return int(rate)


def updated_config(config: LiveConfig, kind: str, session: Any) -> LiveConfig:
    """`config` with what a `session.update` (GA shape) or `transcription_session.update`
    (beta shape) changes; what the event leaves out stays as it was."""
    session = _object(session, "session")
    if kind == "session.update":
        if session.get("type", "transcription") != "transcription":
            raise SessionError(
                "invalid_value",
                "This service holds transcription sessions only: set session.type to"
                " 'transcription'.",
                "session.type",
            )
        given = _object(_object(session.get("audio", {}), "audio").get("input", {}), "input")
        format_key, transcription_key, turns_key = "format", "transcription", "turn_detection"
    else:
        given = session
        if session.get("input_audio_format", "pcm16") != "pcm16":
            raise SessionError(
                "invalid_value", "input_audio_format must be 'pcm16'.", "input_audio_format"
            )
        format_key, transcription_key = "", "input_audio_transcription"
        turns_key = "turn_detection"
    if format_key and format_key in given:
        config = replace(config, rate=_rate(given[format_key]))
    if turns_key in given:
        config = replace(config, vad=_turn_detection(given[turns_key]))
    if given.get(transcription_key) is not None:
        transcription = _object(given[transcription_key], transcription_key)
        model = transcription.get("model") or config.model
        prompt = transcription.get("prompt")
        if prompt and len(str(prompt).encode()) > MAX_PROMPT_BYTES:
            raise SessionError(
                "invalid_value",
                f"transcription.prompt may be at most {MAX_PROMPT_BYTES} bytes long.",
                "prompt",
            )
        config = replace(
            config,
            model=str(model),
            language=str(transcription.get("language") or ""),
            prompt=str(prompt) if prompt else None,
        )
    return config


async def checked_choice(services: Services, config: LiveConfig) -> LiveConfig:
    """`config` with the engine its model names (or the default engine) and its language,
    checked as an upload's are; SessionError if this deployment cannot do them."""
    settings = services.settings
    engine = named_engine(config.model, settings.whisper_model) or settings.default_engine
    try:
        options = choose_options(
            settings, engine=engine, language=config.language or None, prompt=config.prompt
        )
        await check_served(services, options.engine)
    except RefusedChoice as refused:
        raise SessionError("invalid_value", refused.message, refused.field) from refused
    return replace(config, engine=options.engine, language=options.language)
