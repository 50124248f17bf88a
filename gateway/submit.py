"""Accepting a job: upload to disk, job document, `media.uploaded`; all three or none."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from fastapi import HTTPException, Request
from pydantic import AnyHttpUrl, TypeAdapter, ValidationError
from pymongo.errors import PyMongoError

from gateway.auth import caller_of
from gateway.choices import check_served, choose_options
from gateway.limits import check_limits
from gateway.services import Services
from gateway.settings import GatewaySettings
from gateway.speakers import check_speaker_labels_served, references_of, speaker_labels_asked
from gateway.upload import FILE_FIELD, Upload, UploadError, drain, receive_upload
from shared import metrics
from shared.events import MediaUploaded
from shared.jobs.models import Job, new_job_id
from shared.jobs.options import JobOptions
from shared.media import delete_files

log = logging.getLogger(__name__)


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
    """What a form asks of the job besides its media: the job's options, and the clips of the
    known speakers they name (kept beside the job, not in it)."""

    options: JobOptions
    speaker_clips: tuple[bytes, ...] = ()


def job_request_fields(settings: GatewaySettings, upload: Upload) -> JobRequest:
    labels_asked = speaker_labels_asked(upload)
    options = choose_options(
        settings,
        engine=upload.field("engine"),
        language=upload.field("language"),
        task=upload.field("task"),
        hotwords=upload.fields.get("hotwords", []),
        speaker_labels=labels_asked.speaker_labels,
    )
    return JobRequest(options, labels_asked.reference_clips)


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
        options = asked.options
        await check_served(services, options.engine)
        references = []
        if options.speaker_labels is not None:
            await check_speaker_labels_served(services.fleet, options.engine)
            references = await references_of(options.speaker_labels.names, asked.speaker_clips)
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
            options,
            owner=caller,
            held=held,
            duration_seconds=duration,
            filename=name_in_url(source_url) if source_url else upload.filename,
            source_url=source_url,
            size_bytes=upload.size_bytes,
            content_type=upload.content_type,
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
    metrics.jobs_accepted.labels(options.engine, caller or "").inc()
    metrics.upload_seconds.observe(accept_seconds)
    log.info(
        "job %s: accepted %s for %s/%s%s%s",
        job_id,
        f"a URL on {urlsplit(source_url).hostname}" if source_url else f"{upload.size_bytes} bytes",
        options.engine, options.language,
        f" from key {caller}" if caller else "",
        ", held behind the key's earlier jobs" if held else "",
        extra={"job_id": job_id, "duration_seconds": accept_seconds, "engine": options.engine},
    )  # fmt: skip
    return job, upload
