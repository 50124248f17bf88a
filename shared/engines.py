"""The engines this service can run, each declared once by its spec: its name, the model behind
it, the languages and tasks it takes, whether it times its words, and how people tell it from
the others. The gateway's choice rules, `/v1/models` and provenance read the specs and never
branch on an engine's name; the recognizer loads each one with the loader of the same name
(`recognizer/engines/`). Adding an engine is a spec here, a loader module there, and a test.

The gateway refuses a job the recognizers could not do at upload, instead of failing it later.
"""

from dataclasses import dataclass, replace

AUTO_LANGUAGE = "auto"

# What a job asks of the engine: the words as spoken, or their English translation.
TRANSCRIBE = "transcribe"
TRANSLATE = "translate"
TASKS = (TRANSCRIBE, TRANSLATE)

# The languages Whisper models were trained on (ISO 639-1 where one exists).
_WHISPER_CODES = """
    af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw
    he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt
    my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl
    tr tt uk ur uz vi yi yo yue zh
"""
WHISPER_LANGUAGES = frozenset(_WHISPER_CODES.split())
WHISPER_DETECTING = WHISPER_LANGUAGES | {AUTO_LANGUAGE}

# SpeechRecognition ships acoustic and language models for US English only.
SPHINX_LANGUAGES = {"en": "en-US"}


@dataclass(frozen=True)
class EngineSpec:
    name: str
    model: str
    """The model as people know it: "base", "CMU Sphinx en-US"."""
    summary: str
    """One line for people choosing an engine: what it runs and what it is good at."""
    languages: frozenset[str]
    """The language codes it accepts, `auto` among them where it can tell the language."""
    tasks: tuple[str, ...] = (TRANSCRIBE,)
    times_words: bool = False
    """Whether it says when each word was said: speaker labels need that."""
    local_whisper: bool = False
    """A Whisper model run here: beam, VAD and word-timing settings apply, and it can tell the
    language of a stretch of audio."""
    whisper_steering: bool = False
    """Whether a prompt, a temperature and hotwords reach it (Whisper, local or hosted)."""
    online: bool = False
    """It sends the audio to a provider, so it is served only when configured."""
    aliases: tuple[str, ...] = ()
    """Other names the OpenAI routes accept for it, as `model`."""

    def configured(self, whisper_model: str) -> "EngineSpec":
        """The spec as this deployment runs it (only faster-whisper's depends on the model it is
        given, STT_WHISPER_MODEL)."""
        return self


def whisper_model_name(whisper_model: str) -> str:
    """The model STT_WHISPER_MODEL names, as people know it: 'tiny.en', or a folder's name."""
    return whisper_model.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ConfiguredWhisperSpec(EngineSpec):
    """faster-whisper running the model STT_WHISPER_MODEL names: an English-only model (`.en`)
    takes English alone and cannot translate."""

    def configured(self, whisper_model: str) -> EngineSpec:
        model = whisper_model_name(whisper_model)
        english_only = model.endswith(".en")
        fast = "the fast one, in about 0.6 of whisper-base's time"
        return replace(
            self,
            model=model,
            summary=f"Whisper {model}: {fast}"
            if model.startswith("tiny")
            else f"Whisper {model}, run by faster-whisper",
            languages=frozenset({"en"}) if english_only else WHISPER_DETECTING,
            tasks=(TRANSCRIBE,) if english_only else TASKS,
            aliases=(f"whisper-{model}",),
        )


FASTER_WHISPER = "faster-whisper"
WHISPER_BASE = "whisper-base"
SPHINX = "sphinx"
GOOGLE = "google"
OPENAI = "openai"
GROQ = "groq"

_LEAVES = "the audio leaves this machine"

ENGINE_SPECS: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        ConfiguredWhisperSpec(
            FASTER_WHISPER,
            "tiny.en",
            "Whisper tiny.en",
            frozenset({"en"}),
            times_words=True,
            local_whisper=True,
            whisper_steering=True,
        ),
        EngineSpec(
            WHISPER_BASE,
            "base",
            "Whisper base: the accurate one, and multilingual, with translation",
            WHISPER_DETECTING,
            TASKS,
            times_words=True,
            local_whisper=True,
            whisper_steering=True,
        ),
        EngineSpec(
            SPHINX,
            "CMU Sphinx en-US",
            "CMU Sphinx: English only, least accurate; the tutorial's engine",
            frozenset(SPHINX_LANGUAGES),
            times_words=True,
        ),
        EngineSpec(
            GOOGLE,
            "Google Speech-to-Text",
            f"Google's online recognizer: {_LEAVES}",
            WHISPER_LANGUAGES,
            online=True,
        ),
        EngineSpec(
            OPENAI,
            "OpenAI's hosted model",
            f"OpenAI's online transcription: {_LEAVES}",
            WHISPER_DETECTING,
            TASKS,
            whisper_steering=True,
            online=True,
        ),
        EngineSpec(
            GROQ,
            "Groq's hosted Whisper",
            f"Groq's online Whisper: {_LEAVES}",
            WHISPER_DETECTING,
            TASKS,
            whisper_steering=True,
            online=True,
        ),
    )
}

KNOWN_ENGINES = tuple(ENGINE_SPECS)
OFFLINE_ENGINES = tuple(name for name, spec in ENGINE_SPECS.items() if not spec.online)
LOCAL_WHISPER_ENGINES = tuple(name for name, spec in ENGINE_SPECS.items() if spec.local_whisper)
SPEAKER_LABEL_ENGINES = tuple(name for name, spec in ENGINE_SPECS.items() if spec.times_words)


def spec_of(engine: str, whisper_model: str) -> EngineSpec | None:
    """`engine`'s spec as this deployment runs it; None for a name no spec has."""
    spec = ENGINE_SPECS.get(engine)
    return spec.configured(whisper_model) if spec else None


def supported_languages(engine: str, whisper_model: str) -> frozenset[str]:
    spec = spec_of(engine, whisper_model)
    return spec.languages if spec else frozenset()


def supported_tasks(engine: str, whisper_model: str) -> tuple[str, ...]:
    spec = spec_of(engine, whisper_model)
    return spec.tasks if spec else ()


def describe(engine: str, whisper_model: str) -> str:
    """The engine as a message names it: with its Whisper model where the name does not say it."""
    spec = spec_of(engine, whisper_model)
    if spec and spec.local_whisper and spec.model not in engine:
        return f"'{engine}' (model {spec.model})"
    return f"'{engine}'"


def named_engine(model: str, whisper_model: str) -> str | None:
    """The engine id `model` names, an engine id or one of an engine's aliases; None if none."""
    if model in ENGINE_SPECS:
        return model
    for name in ENGINE_SPECS:
        spec = spec_of(name, whisper_model)
        if spec and model in spec.aliases:
            return name
    return None


def engine_named(model: str, whisper_model: str) -> str:
    """The engine id `model` names, or `model` itself for the choice rules to refuse."""
    return named_engine(model, whisper_model) or model
