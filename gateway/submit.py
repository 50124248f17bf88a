"""Accepting a job: upload to disk, job document, `media.uploaded`; all three or none."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from fastapi import HTTPException, Request
from pydantic import AnyHttpUrl, TypeAdapter, ValidationError
from pymongo.errors import PyMongoError

from gateway.auth import caller_of
from gateway.limits import check_limits
from gateway.services import Services
from gateway.settings import GatewaySettings
from gateway.speakers import SpeakerAsk, check_labelling, references_of, speaker_fields
from gateway.upload import FILE_FIELD, Upload, UploadError, drain, receive_upload
from shared import metrics
from shared.engines import (
    AUTO_LANGUAGE,
    ENGINE_SPECS,
    TASKS,
    TRANSCRIBE,
    TRANSLATE,
    describe,
    supported_languages,
    supported_tasks,
)
from shared.events import MediaUploaded
from shared.jobs.models import Job, new_job_id
from shared.media import delete_files

log = logging.getLogger(__name__)


class RefusedChoice(HTTPException):
    """A form asks for what this deployment cannot do: 422 on the service's own routes; other
    routes (the OpenAI one) answer in their own shape, naming the form `field`."""

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


def hotwords_field(upload: Upload) -> tuple[str, ...]:
    """The form's `hotwords`: names and terms, comma-separated, or the field sent once for each.
    Whisper reads them as the text before the audio, which holds about 220 tokens: hence the cap."""
    terms = [
        term.strip()
        for value in upload.fields.get("hotwords", [])
        for term in value.split(",")
        if term.strip()
    ]
    hotwords = tuple(dict.fromkeys(terms))
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


MAX_URL_LENGTH = 2048
_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


def http_url_field(upload: Upload, name: str, instead_of_credentials: str) -> str | None:
    """The form's field `name`, checked: an absolute http or https URL without user info."""
    value = upload.field(name)
    if value is None:
        return None
    problem = f"{name} must be an absolute http or https URL of at most {MAX_URL_LENGTH} characters"
    # pydantic would mend ' http:/host' into a URL; a malformed one is refused, not guessed at.
    scheme_given = value.lower().startswith(("http://", "https://"))
    if len(value) > MAX_URL_LENGTH or not scheme_given:
        raise HTTPException(422, f"{problem}.")
    try:
        url = _HTTP_URL.validate_python(value)
    except ValidationError as error:
        raise HTTPException(422, f"{problem}: {error.errors()[0]['msg']}.") from error
    # httpx would send them as Basic credentials to whatever the host is.
    if url.username is not None or url.password is not None:
        raise HTTPException(
            422, f"{name} must not carry a user name or password; {instead_of_credentials}."
        )
    return str(url)


def callback_url_field(upload: Upload) -> str | None:
    return http_url_field(upload, "callback_url", "sign callbacks instead")


URL_FIELD = "url"


def media_url_field(upload: Upload, accepts_url: bool) -> str | None:
    """Where the media is to be fetched from, for a form that gives it by URL; None for one
    with a file. A route that `accepts_url` takes exactly one of the two."""
    if not accepts_url:
        if not upload.has_file:
            raise HTTPException(
                400, f"No file: send one in the multipart form field '{FILE_FIELD}'."
            )
        return None
    url = http_url_field(upload, URL_FIELD, "give a URL the media can be fetched from as it is")
    if url is not None and upload.has_file:
        raise HTTPException(
            422,
            f"Send the media either as a file in '{FILE_FIELD}' or by its address in"
            f" '{URL_FIELD}', not both.",
        )
    if url is None and not upload.has_file:
        raise HTTPException(
            422,
            f"No media: send a file in the multipart form field '{FILE_FIELD}', or its address"
            f" in '{URL_FIELD}'.",
        )
    return url


def name_in_url(url: str) -> str | None:
    """The last segment of the URL's path, as the name of the media it gives."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or None


@dataclass(frozen=True)
class JobRequest:
    """What a form asks of the job, besides the file."""

    engine: str
    language: str
    prompt: str | None = None
    temperature: float | None = None
    task: str = TRANSCRIBE
    hotwords: tuple[str, ...] = ()
    speakers: SpeakerAsk | None = None


def job_request_fields(settings: GatewaySettings, upload: Upload) -> JobRequest:
    task = choose_task(settings, upload.field("engine"), upload.field("task"))
    language = upload.field("language")
    if language is None and task == TRANSLATE:
        language = AUTO_LANGUAGE  # what is translated need not be in the default language
    engine, language = choose_engine_and_language(settings, upload.field("engine"), language)
    return JobRequest(
        engine,
        language,
        task=task,
        hotwords=hotwords_field(upload),
        speakers=speaker_fields(upload, engine),
    )


async def _withdraw(services: Services, job_id: str, retried: str | None = None) -> None:
    """Delete what was kept of an upload that did not become a job."""
    await asyncio.to_thread(delete_files, services.store.local.of_job(job_id))
    with contextlib.suppress(PyMongoError):  # the database may be why it is withdrawn
        await services.store.delete_job(job_id)
    if retried is not None:
        with contextlib.suppress(PyMongoError):
            await services.jobs.release_request(retried, job_id)


IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 255


def request_key(request: Request, caller: str | None) -> str | None:
    """The request's Idempotency-Key, scoped to its caller so that two callers never share one."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise HTTPException(
            422, f"{IDEMPOTENCY_HEADER} must have 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters."
        )
    return f"{caller or ''}:{key}"


async def _earlier_job(services: Services, earlier: str, job_id: str) -> Job:
    """The job an earlier request with the same Idempotency-Key created; this upload goes."""
    await _withdraw(services, job_id)
    job = await services.jobs.get(earlier)
    if job is None:
        raise HTTPException(
            409,
            f"A request with this {IDEMPOTENCY_HEADER} is still being received; try again in a"
            " moment.",
        )
    log.info("job %s: returned again for a retried request", earlier)
    return job


async def submit_job(
    services: Services,
    request: Request,
    read_fields: Callable[[GatewaySettings, Upload], JobRequest] = job_request_fields,
    accepts_url: bool = False,
) -> tuple[Job, Upload]:
    """Receive the upload, create the job and announce it. `read_fields` reads what the form
    asks of the job (and raises HTTPException, or the route's own error, for bad fields). A
    route that `accepts_url` takes the media's address in `url` instead of a file: the
    transcoder fetches it."""
    started = time.perf_counter()
    job_id = new_job_id()
    path = services.store.local.upload(job_id)
    length = request.headers.get("content-length")
    caller = caller_of(request).name
    declared = int(length) if length and length.isdigit() else None
    body = request.stream()
    # The upload counts as in flight until its refused body has been drained too.
    limit = services.settings.max_uploads_per_key
    with services.uploads.holding(caller, limit, Connection="close"):
        try:
            upload = await receive_upload(
                body,
                request.headers.get("content-type"),
                declared,
                path,
                services.settings.max_upload_bytes,
            )
        except UploadError as error:
            # A body refused for its size is not read further.
            if error.status_code != 413:
                await drain(body, declared)
            raise HTTPException(
                error.status_code, error.message, headers={"Connection": "close"}
            ) from error

    retried = request_key(request, caller)
    try:
        source_url = media_url_field(upload, accepts_url)
        asked = read_fields(services.settings, upload)
        callback_url = callback_url_field(upload)
        await check_served(services, asked.engine)
        references = []
        if asked.speakers is not None:
            await check_labelling(services.fleet, asked.engine)
            references = await references_of(asked.speakers)
        if retried is not None:
            earlier = await services.jobs.claim_request(retried, job_id)
            if earlier is not None:
                return await _earlier_job(services, earlier, job_id), upload
        duration = await check_limits(
            services.jobs,
            services.settings,
            caller,
            path if upload.has_file else None,
            by_url=source_url is not None,
        )
        held = await services.fair_share.holds(caller)
        if upload.has_file:
            await services.store.keep_upload(job_id)
        job = await services.jobs.create(
            job_id,
            owner=caller,
            held=held,
            duration_seconds=duration,
            filename=name_in_url(source_url) if source_url else upload.filename,
            source_url=source_url,
            size_bytes=upload.size_bytes,
            content_type=upload.content_type,
            language=asked.language,
            engine=asked.engine,
            prompt=asked.prompt,
            temperature=asked.temperature,
            task=asked.task,
            hotwords=asked.hotwords,
            speaker_labels=asked.speakers.labels if asked.speakers else None,
            speaker_references=references,
            callback_url=callback_url,
            settings=services.settings,
        )
    except BaseException:
        await _withdraw(services, job_id, retried)
        raise

    try:
        if not held:
            await services.broker.publish(MediaUploaded(job_id=job_id))
    except BaseException:
        log.warning("job %s: media.uploaded not confirmed; withdrawing the job", job_id)
        await _withdraw(services, job_id, retried)
        await services.jobs.delete(job_id)
        raise
    accept_seconds = time.perf_counter() - started
    metrics.jobs_accepted.labels(asked.engine, caller or "").inc()
    metrics.upload_seconds.observe(accept_seconds)
    log.info(
        "job %s: accepted %s for %s/%s%s%s",
        job_id,
        f"a URL on {urlsplit(source_url).hostname}" if source_url else f"{upload.size_bytes} bytes",
        asked.engine, asked.language,
        f" from key {caller}" if caller else "",
        ", held behind the key's earlier jobs" if held else "",
        extra={"job_id": job_id, "duration_seconds": accept_seconds, "engine": asked.engine},
    )  # fmt: skip
    return job, upload
