"""The choice rules: what a request asks of recognition (engine, language, task, hotwords, speaker
labels), checked against the engine specs (shared/engines.py), with the deployment's defaults for
what it leaves out, made into the job's options. Uploads, the OpenAI routes and live sessions all
choose here, so a request is refused the same way on each of them, at once, instead of failing
later in a recognizer."""

from collections.abc import Sequence
from typing import ClassVar

from fastapi import HTTPException

from gateway.services import Services
from gateway.settings import GatewaySettings
from gateway.speakers import SpeakerLabelsRefused
from shared.engines import (
    AUTO_LANGUAGE,
    ENGINE_SPECS,
    SPEAKER_LABEL_ENGINES,
    TASKS,
    TRANSCRIBE,
    TRANSLATE,
    describe,
    supported_languages,
    supported_tasks,
)
from shared.jobs.options import JobOptions, SpeakerLabels


class RefusedChoice(HTTPException):
    """A request asks for what this deployment cannot do: 422 on the service's own routes; other
    routes (the OpenAI one, live sessions) answer in their own shape, naming the form `field`."""

    field: ClassVar[str]

    def __init__(self, message: str) -> None:
        super().__init__(422, message)
        self.message = message


class UnknownEngine(RefusedChoice):
    field = "engine"


class UnsupportedLanguage(RefusedChoice):
    field = "language"


class UnsupportedTask(RefusedChoice):
    field = "task"


class UnfitHotwords(RefusedChoice):
    field = "hotwords"


def choose_options(
    settings: GatewaySettings,
    *,
    engine: str | None,
    language: str | None,
    task: str | None = None,
    hotwords: Sequence[str] = (),
    prompt: str | None = None,
    temperature: float | None = None,
    speaker_labels: SpeakerLabels | None = None,
) -> JobOptions:
    """The job's options from what a request sends (None: not sent), each checked against the
    engine's spec; raises a RefusedChoice, or SpeakerLabelsRefused, for one it cannot have."""
    task = choose_task(settings, engine, task)
    if language is None and task == TRANSLATE:
        language = AUTO_LANGUAGE  # what is translated need not be in the default language
    engine, language = choose_engine_and_language(settings, engine, language)
    options = JobOptions(
        engine=engine,
        language=language,
        task=task,
        hotwords=hotwords_of(hotwords),
        prompt=prompt,
        temperature=temperature,
        speaker_labels=speaker_labels,
    )
    if speaker_labels is not None and engine not in SPEAKER_LABEL_ENGINES:
        raise SpeakerLabelsRefused(
            f"The engine {engine!r} does not time what it hears, which speaker labels need;"
            f" use {' or '.join(SPEAKER_LABEL_ENGINES)}."
        )
    return options


def choose_engine_and_language(
    settings: GatewaySettings, engine: str | None, language: str | None
) -> tuple[str, str]:
    # A field that is sent must be valid: only a missing one takes the default.
    engine = settings.default_engine if engine is None else engine
    language = (settings.default_language if language is None else language).lower()
    if engine not in ENGINE_SPECS:
        raise UnknownEngine(
            f"Unknown engine {engine!r}; this service knows: {', '.join(ENGINE_SPECS)}."
        )
    languages = supported_languages(engine, settings.whisper_model)
    if language not in languages:
        able = [
            describe(other, settings.whisper_model)
            for other in ENGINE_SPECS
            if language in supported_languages(other, settings.whisper_model)
        ]
        advice = f" Use engine {' or '.join(able)}." if able else " No engine here does."
        shown = ", ".join(sorted(languages)) if len(languages) < 10 else "the Whisper languages"
        raise UnsupportedLanguage(
            f"The engine {describe(engine, settings.whisper_model)} does not transcribe language"
            f" {language!r}; it does {shown}.{advice}"
        )
    return engine, language


def choose_task(settings: GatewaySettings, engine: str | None, task: str | None) -> str:
    """The form's `task` (transcribe unless sent), refused if the engine cannot do it."""
    task = TRANSCRIBE if task is None else task
    if task not in TASKS:
        raise UnsupportedTask(f"Unknown task {task!r}; ask for {' or '.join(TASKS)}.")
    engine = settings.default_engine if engine is None else engine
    # An unknown engine is refused by choose_engine_and_language.
    if engine in ENGINE_SPECS and task not in supported_tasks(engine, settings.whisper_model):
        able = [
            describe(other, settings.whisper_model)
            for other in ENGINE_SPECS
            if task in supported_tasks(other, settings.whisper_model)
        ]
        raise UnsupportedTask(
            f"The engine {describe(engine, settings.whisper_model)} cannot {task}: it only"
            f" transcribes. Use engine {' or '.join(able)}."
        )
    return task


MAX_HOTWORDS = 20
MAX_HOTWORDS_CHARACTERS = 200


def hotwords_of(values: Sequence[str]) -> list[str]:
    """A form's `hotwords`: names and terms, comma-separated, or the field sent once for each.
    Whisper reads them as the text before the audio, which holds about 220 tokens: hence the cap."""
    terms = [term.strip() for value in values for term in value.split(",") if term.strip()]
    hotwords = list(dict.fromkeys(terms))
    if len(hotwords) > MAX_HOTWORDS or len(", ".join(hotwords)) > MAX_HOTWORDS_CHARACTERS:
        raise UnfitHotwords(
            f"hotwords takes at most {MAX_HOTWORDS} names or terms and"
            f" {MAX_HOTWORDS_CHARACTERS} characters in all; got {len(hotwords)} terms,"
            f" {len(', '.join(hotwords))} characters."
        )
    return hotwords


async def check_served(services: Services, engine: str) -> None:
    """Refuse an engine nothing will ever recognize with: one this deployment neither
    configures (STT_ENGINES) nor saw a recognizer serve within the last hour. A served engine
    is accepted even while no recognizer runs: the job waits in its queue until one does."""
    if engine in services.settings.engines or engine in await services.fleet.served_recently():
        return
    raise UnknownEngine(
        f"No recognizer serves the engine {engine!r}, and this deployment does not offer it"
        f" (STT_ENGINES={','.join(services.settings.engines)}); choose another."
    )
