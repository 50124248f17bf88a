"""The gateway's settings (STT_* variables), on top of those every service shares."""

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator

from shared.settings import CommaSeparated, CommonSettings


class GatewaySettings(CommonSettings):
    host: str = Field(
        "127.0.0.1", description="The address the gateway listens on (`0.0.0.0` for every one)."
    )
    port: int = Field(8000, ge=1, le=65535, description="The port the gateway listens on.")
    shutdown_unready_seconds: float = Field(
        1,
        ge=0,
        description="On SIGTERM, how long the gateway answers /readyz with 503 while it still"
        " serves, before it stops taking connections: a proxy that checks /readyz more often"
        " than this sends it nothing new by then, and nothing is cut off mid-request.",
    )
    native_wait_seconds: float = Field(
        120,
        gt=0,
        description="How long POST /stt/native waits before answering 504 with the job id.",
    )
    api_keys: Annotated[tuple[SecretStr, ...], *CommaSeparated] = Field(
        (),
        description="Comma-separated keys; when set, every route but health, metrics, the page"
        " and the docs (gateway.auth.PUBLIC_PATHS) needs `Authorization: Bearer <key>`.",
    )
    admin_keys: Annotated[tuple[SecretStr, ...], *CommaSeparated] = Field(
        (),
        description="Comma-separated keys, written like STT_API_KEYS, that see and delete every"
        " job and may filter the job list by owner.",
    )
    max_jobs_per_key: int | None = Field(
        None, gt=0, description="When set, a key with this many jobs under way gets 429."
    )
    max_uploads_per_key: int = Field(
        4,
        gt=0,
        description="Uploads one key may be sending at once (to each gateway process); one more"
        " gets 429 before its body is read.",
    )
    max_waits_per_key: int = Field(
        32,
        gt=0,
        description="Event streams and requests waiting on a job's end (the OpenAI and tutorial"
        " routes) one key may hold open at once, on each gateway process; one more gets 429.",
    )
    max_fetches_per_key: int = Field(
        4,
        gt=0,
        description="Jobs with media by URL one key may have waiting to be fetched; one more gets"
        " 429, so that one key's slow servers cannot take every transcoder.",
    )
    max_backlog_seconds_per_key: float | None = Field(
        None,
        gt=0,
        description="When set, an upload that would bring a key's audio waiting for recognition"
        " past this many seconds gets 429.",
    )
    events_keepalive_seconds: float = Field(
        15, gt=0, description="GET /v1/jobs/{id}/events sends a comment this often while idle."
    )
    callback_secret: SecretStr | None = Field(
        None,
        description="When set, callbacks carry X-STT-Signature: t=<time>,v1=<HMAC-SHA256 of the"
        " time, a dot and the body>.",
    )
    callback_timeout_seconds: float = Field(
        10,
        gt=0,
        description="How long one callback attempt may take, whole: lookup, connection and the"
        " receiver's status line (its body is never read).",
    )
    max_backlog_seconds: float | None = Field(
        None,
        gt=0,
        description="When set, an upload that would bring the audio accepted and not yet"
        " recognized past this many seconds gets 429 with Retry-After.",
    )
    callback_allowed_hosts: Annotated[tuple[str, ...], *CommaSeparated] = Field(
        (),
        description="Comma-separated host names (or addresses, as written in the URL) that"
        " callbacks may reach even though they are not public, for receivers inside your network.",
    )
    callback_concurrency: int = Field(
        16, gt=0, description="Callbacks one gateway delivers at once."
    )

    max_live_sessions: int = Field(
        20, gt=0, description="Live sessions (`/v1/realtime`) one gateway holds at once."
    )
    max_live_sessions_per_key: int = Field(
        4,
        gt=0,
        description="Live sessions one API key may hold at once, counted in the job store over"
        " every gateway; one more gets `session_limit_reached`.",
    )
    live_max_session_seconds: float = Field(
        3600, gt=0, description="A live session is ended after this long."
    )
    live_idle_timeout_seconds: float = Field(
        60, gt=0, description="A live session that sends nothing for this long is ended."
    )
    live_max_pending_utterances: int = Field(
        8,
        gt=0,
        description="When this many of a live session's utterances wait to be recognized, the"
        " gateway stops reading its audio until fewer do, and says so in an `error` event.",
    )
    live_burst_seconds: float = Field(
        10,
        gt=0,
        description="Audio a live session may send ahead of its pace (STT_LIVE_MAX_PACE) at any"
        " moment; what comes beyond it is dropped, and the session told in an `error` event.",
    )
    live_max_pace: float = Field(
        4,
        gt=0,
        description="How many seconds of audio a live session may send per second of wall clock,"
        " on top of STT_LIVE_BURST_SECONDS (4: four times real time).",
    )
    live_max_message_bytes: int = Field(
        15 * 1024 * 1024,
        ge=64 * 1024,
        description="The largest WebSocket message a live session may send, decompressed"
        " (OpenAI's limit for `input_audio_buffer.append` is 15 MiB); a larger one closes the"
        " socket with 1009.",
    )
    live_threads: int = Field(
        2,
        gt=0,
        description="Threads one gateway gives the work of all its live sessions (decoding"
        " messages, resampling, voice detection), apart from the threads uploads use.",
    )
    live_interim_seconds: float = Field(
        0.75,
        ge=0,
        le=5,
        description="While an utterance of a live session is under way, its audio so far is"
        " recognized again this often, and the words two passes in a row agree on are sent as"
        " `delta` events. 0 turns interim text off (then each utterance's text comes whole,"
        " when it is recognized). Each pass takes a recognizer slot for a moment.",
    )
    live_utterance_seconds: float = Field(
        15,
        ge=2,
        le=30,
        description="A live utterance this long is cut at its quietest point, even if the"
        " speaker has not paused, so that final text keeps coming.",
    )
    live_behind_seconds: float = Field(
        2.0,
        gt=0,
        description="When an utterance's text has not come back this long after its speech"
        " stopped, the gateway tells the session recognition is behind (an `error` event), once"
        " until it has caught up.",
    )
    run_gateways: int = Field(
        1,
        ge=1,
        description="Gateways `make run` starts. Above 1, each listens on a free port of"
        " loopback, and HAProxy (Debian's `haproxy`) on STT_HOST:STT_PORT spreads requests"
        " over them.",
    )

    @field_validator("callback_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # compose passes an unset variable on as an empty one.
        return None if value == "" else value
