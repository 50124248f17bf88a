"""Accepting a job: upload to disk, job document, `media.uploaded`; all three or none."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fastapi import HTTPException, Request
from pydantic import AnyHttpUrl, TypeAdapter, ValidationError
from pymongo.errors import PyMongoError

from gateway.auth import caller_of
from gateway.backlog import Backlog
from gateway.settings import GatewaySettings
from gateway.sniff import declared_seconds
from gateway.speakers import SpeakerAsk, check_labelling, references_of, speaker_fields
from gateway.upload import Upload, UploadError, receive_upload
from gateway.watcher import JobWatcher
from shared import metrics
from shared.broker import Broker
from shared.engines import KNOWN_ENGINES, describe, supported_languages
from shared.events import MediaUploaded
from shared.fairness import should_hold
from shared.fleet import Fleet
from shared.jobs import Job, JobStore, new_job_id
from shared.media import delete_files
from shared.store import MediaStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    settings: GatewaySettings
    broker: Broker
    jobs: JobStore
    store: MediaStore
    watcher: JobWatcher
    fleet: Fleet
    backlog: Backlog


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


def choose_engine_and_language(
    settings: GatewaySettings, engine: str | None, language: str | None
) -> tuple[str, str]:
    # A field that is sent must be valid: only a missing one takes the default.
    engine = settings.default_engine if engine is None else engine
    language = (settings.default_language if language is None else language).lower()
    if engine not in KNOWN_ENGINES:
        raise UnknownEngine(
            f"Unknown engine {engine!r}; this service knows: {', '.join(KNOWN_ENGINES)}."
        )
    languages = supported_languages(engine, settings.whisper_model)
    if language not in languages:
        able = [
            describe(other, settings.whisper_model)
            for other in KNOWN_ENGINES
            if language in supported_languages(other, settings.whisper_model)
        ]
        advice = f" Use engine {' or '.join(able)}." if able else " No engine here does."
        shown = ", ".join(sorted(languages)) if len(languages) < 10 else "the Whisper languages"
        raise UnsupportedLanguage(
            f"The engine {describe(engine, settings.whisper_model)} does not transcribe language"
            f" {language!r}; it does {shown}.{advice}"
        )
    return engine, language


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


MAX_CALLBACK_URL_LENGTH = 2048
_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


def callback_url_field(upload: Upload) -> str | None:
    """The form's `callback_url`, checked: an absolute http or https URL without user info."""
    value = upload.field("callback_url")
    if value is None:
        return None
    problem = (
        "callback_url must be an absolute http or https URL"
        f" of at most {MAX_CALLBACK_URL_LENGTH} characters"
    )
    # pydantic would mend ' http:/host' into a URL; a malformed one is refused, not guessed at.
    scheme_given = value.lower().startswith(("http://", "https://"))
    if len(value) > MAX_CALLBACK_URL_LENGTH or not scheme_given:
        raise HTTPException(422, f"{problem}.")
    try:
        url = _HTTP_URL.validate_python(value)
    except ValidationError as error:
        raise HTTPException(422, f"{problem}: {error.errors()[0]['msg']}.") from error
    # httpx would send them as Basic credentials to whatever the host is.
    if url.username is not None or url.password is not None:
        raise HTTPException(
            422, "callback_url must not carry a user name or password; sign callbacks instead."
        )
    return str(url)


@dataclass(frozen=True)
class JobRequest:
    """What a form asks of the job, besides the file."""

    engine: str
    language: str
    prompt: str | None = None
    temperature: float | None = None
    speakers: SpeakerAsk | None = None


def job_request_fields(settings: GatewaySettings, upload: Upload) -> JobRequest:
    engine, language = choose_engine_and_language(
        settings, upload.field("engine"), upload.field("language")
    )
    return JobRequest(engine, language, speakers=speaker_fields(upload, engine))


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
BACKLOG_RETRY_AFTER_SECONDS = 30


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


async def check_limits(services: Services, caller: str | None, upload: Path) -> float | None:
    """Raise 429 if the upload would take the service, or its caller's key, past a limit the
    deployment set; return its length as its container declares it, when a limit needs it."""
    settings = services.settings
    if caller is not None and settings.max_jobs_per_key is not None:
        under_way = await services.jobs.count_unfinished(caller)
        if under_way >= settings.max_jobs_per_key:
            raise _busy(
                f"The key {caller!r} has {under_way} jobs under way, as many as one key may"
                " (STT_MAX_JOBS_PER_KEY); try again once one has finished."
            )
    limits: list[tuple[float | None, str | None, str, str]] = [
        (settings.max_backlog_seconds, None, "The service", "STT_MAX_BACKLOG_SECONDS")
    ]
    if caller is not None:
        limits.append(
            (
                settings.max_backlog_seconds_per_key,
                caller,
                f"The key {caller!r}",
                "STT_MAX_BACKLOG_SECONDS_PER_KEY",
            )
        )
    if all(limit is None for limit, *_ in limits):
        return None
    seconds = await asyncio.to_thread(declared_seconds, upload)
    for limit, owner, who, setting in limits:
        if limit is None:
            continue
        queued = await services.jobs.queued_audio_seconds(owner)
        if queued + (seconds or 0.0) > limit:
            raise _busy(
                f"{who} has {queued:.0f} s of audio waiting, and may have at most {limit:.0f} s"
                f" ({setting}); try again later."
            )
    return seconds


def _busy(message: str) -> HTTPException:
    return HTTPException(429, message, headers={"Retry-After": str(BACKLOG_RETRY_AFTER_SECONDS)})


async def submit_job(
    services: Services,
    request: Request,
    read_fields: Callable[[GatewaySettings, Upload], JobRequest] = job_request_fields,
) -> tuple[Job, Upload]:
    """Receive the upload, create the job and announce it. `read_fields` reads what the form
    asks of the job (and raises HTTPException, or the route's own error, for bad fields)."""
    started = time.perf_counter()
    job_id = new_job_id()
    path = services.store.local.upload(job_id)
    length = request.headers.get("content-length")
    try:
        upload = await receive_upload(
            request.stream(),
            request.headers.get("content-type"),
            int(length) if length and length.isdigit() else None,
            path,
            services.settings.max_upload_bytes,
        )
    except UploadError as error:
        # The rest of the body may be large and is unwanted: close instead of reading it.
        raise HTTPException(
            error.status_code, error.message, headers={"Connection": "close"}
        ) from error

    caller = caller_of(request).name
    retried = request_key(request, caller)
    try:
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
        duration = await check_limits(services, caller, path)
        held = await should_hold(services.jobs, caller, services.settings.fair_share_per_key)
        await services.store.keep_upload(job_id)
        job = await services.jobs.create(
            job_id,
            owner=caller,
            held=held,
            duration_seconds=duration,
            filename=upload.filename,
            size_bytes=upload.size_bytes,
            content_type=upload.content_type,
            language=asked.language,
            engine=asked.engine,
            prompt=asked.prompt,
            temperature=asked.temperature,
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
        "job %s: accepted %d bytes for %s/%s%s%s",
        job_id, upload.size_bytes, asked.engine, asked.language,
        f" from key {caller}" if caller else "",
        ", held behind the key's earlier jobs" if held else "",
        extra={"job_id": job_id, "duration_seconds": accept_seconds, "engine": asked.engine},
    )  # fmt: skip
    return job, upload
