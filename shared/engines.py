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
