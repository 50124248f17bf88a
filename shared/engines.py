"""Which engines exist and which languages each can transcribe, known to the gateway and workers.

The gateway refuses a job the recognizers could not do at upload, instead of failing it later.
"""

FASTER_WHISPER = "faster-whisper"
WHISPER_BASE = "whisper-base"
SPHINX = "sphinx"
# Online engines: they send the audio to a provider, so they are served only when configured.
GOOGLE = "google"
OPENAI = "openai"
GROQ = "groq"
OFFLINE_ENGINES = (FASTER_WHISPER, WHISPER_BASE, SPHINX)
# Whisper models run here, which can tell the language of a piece of audio.
LOCAL_WHISPER_ENGINES = (FASTER_WHISPER, WHISPER_BASE)
KNOWN_ENGINES = (*OFFLINE_ENGINES, GOOGLE, OPENAI, GROQ)
# Speaker labels need to know when each word was said: the engines that run here time them; the
# online ones give text alone.
SPEAKER_ENGINES = OFFLINE_ENGINES

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

# SpeechRecognition ships acoustic and language models for US English only.
SPHINX_LANGUAGES = {"en": "en-US"}


def is_english_only(whisper_model: str) -> bool:
    return whisper_model.rstrip("/").endswith(".en")


def supported_languages(engine: str, whisper_model: str) -> frozenset[str]:
    """The language codes `engine` accepts, `auto` included where it can detect the language."""
    if engine == SPHINX:
        return frozenset(SPHINX_LANGUAGES)
    if engine == FASTER_WHISPER:
        if is_english_only(whisper_model):
            return frozenset({"en"})
        return WHISPER_LANGUAGES | {AUTO_LANGUAGE}
    if engine in (WHISPER_BASE, OPENAI, GROQ):
        return WHISPER_LANGUAGES | {AUTO_LANGUAGE}
    if engine == GOOGLE:
        return WHISPER_LANGUAGES
    return frozenset()


def supported_tasks(engine: str, whisper_model: str) -> tuple[str, ...]:
    """What `engine` can do: English-only models, Sphinx and Google only transcribe; the
    multilingual Whisper models, local or hosted, also translate into English."""
    if engine in (WHISPER_BASE, OPENAI, GROQ) or (
        engine == FASTER_WHISPER and not is_english_only(whisper_model)
    ):
        return TASKS
    return (TRANSCRIBE,)


def describe(engine: str, whisper_model: str) -> str:
    return f"'{engine}' (model {whisper_model})" if engine == FASTER_WHISPER else f"'{engine}'"


def whisper_model_name(whisper_model: str) -> str:
    """The model STT_WHISPER_MODEL names, as people know it: 'tiny.en', or a folder's name."""
    return whisper_model.rstrip("/").rsplit("/", 1)[-1]


def model_of(engine: str, whisper_model: str) -> str:
    """The model behind an engine id: faster-whisper runs STT_WHISPER_MODEL, whisper-base base."""
    return {
        FASTER_WHISPER: whisper_model_name(whisper_model),
        WHISPER_BASE: "base",
        SPHINX: "CMU Sphinx en-US",
        GOOGLE: "Google Speech-to-Text",
        OPENAI: "OpenAI's hosted model",
        GROQ: "Groq's hosted Whisper",
    }.get(engine, engine)


def summary_of(engine: str, whisper_model: str) -> str:
    """One line for people choosing an engine: its model, and what it is good at."""
    model = model_of(engine, whisper_model)
    if engine == FASTER_WHISPER:
        if model.startswith("tiny"):
            return f"Whisper {model}: the fast one, in about 0.6 of whisper-base's time"
        return f"Whisper {model}, run by faster-whisper"
    return {
        WHISPER_BASE: "Whisper base: the accurate one, and multilingual, with translation",
        SPHINX: "CMU Sphinx: English only, least accurate; the tutorial's engine",
        GOOGLE: "Google's online recognizer: the audio leaves this machine",
        OPENAI: "OpenAI's online transcription: the audio leaves this machine",
        GROQ: "Groq's online Whisper: the audio leaves this machine",
    }.get(engine, model)


def model_aliases(whisper_model: str) -> dict[str, str]:
    """OpenAI-style model names for the local Whisper engines ('whisper-tiny.en',
    'whisper-base'), each to its engine id."""
    return {
        f"whisper-{whisper_model_name(whisper_model)}": FASTER_WHISPER,
        WHISPER_BASE: WHISPER_BASE,
    }


def engine_named(model: str, whisper_model: str) -> str:
    """The engine id `model` names: an engine id, or one of its model_aliases."""
    return model if model in KNOWN_ENGINES else model_aliases(whisper_model).get(model, model)
