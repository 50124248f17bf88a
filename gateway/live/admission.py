"""Who may open a live session: the API key the client presented, this gateway's limit on its
sessions, and the key's limits on jobs and on sessions, counted in the job store over every
gateway."""

from datetime import timedelta

from fastapi import HTTPException, WebSocket

from gateway.auth import Caller
from gateway.limits import check_limits
from gateway.live.sessions import LiveSessions
from gateway.services import Services
from shared.jobs.listing import list_key
from shared.jobs.models import Job, now

SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."
# A session marks its job alive this often; one not marked for SESSION_GONE_SECONDS (its gateway
# died) no longer counts against its key.
SESSION_ALIVE_SECONDS = 10.0
SESSION_GONE_SECONDS = 3 * SESSION_ALIVE_SECONDS


def presented_key(websocket: WebSocket) -> tuple[str, str | None]:
    """The API key a client presented, and the subprotocol to answer with: OpenAI's clients
    send the key as a bearer token, its browser clients as a subprotocol (browsers cannot set
    headers on a WebSocket) beside `realtime`. Only `realtime` is ever answered: echoing the
    key's subprotocol would write the secret into the response, where proxies log it."""
    authorization = websocket.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    offered = [
        name.strip()
        for name in websocket.headers.get("sec-websocket-protocol", "").split(",")
        if name.strip()
    ]
    answered = next((name for name in offered if name == "realtime"), None)
    for name in offered:
        if name.startswith(SUBPROTOCOL_KEY_PREFIX):
            return name.removeprefix(SUBPROTOCOL_KEY_PREFIX), answered
    if scheme.lower() == "bearer" and token:
        return token.strip(), answered
    return "", answered


async def opening_refusal(sessions: LiveSessions, services: Services, caller: Caller) -> str | None:
    """Why one more session of `caller` may not start, or None: this gateway's sessions, and
    the key's jobs under way and backlog, as uploads count them."""
    if sessions.stopping:
        return "This gateway is shutting down; connect again."
    if (full := sessions.full()) is not None:
        return full
    try:
        await check_limits(services.jobs, services.settings, caller.name, None)
    except HTTPException as refused:
        return str(refused.detail)
    # Asked again after the wait, when other sessions may have started: from here to
    # `sessions.holding` nothing awaits, so no session can slip in between.
    return sessions.full()


async def key_refusal(services: Services, caller: Caller, job: Job) -> str | None:
    """Once the session's job exists: why the key holds too many sessions for it, counting
    those begun before it on every gateway, or None."""
    per_key = services.settings.max_live_sessions_per_key
    if caller.name is None:
        return None
    earlier = await services.jobs.count_live_sessions(
        caller.name,
        seen_since=now() - timedelta(seconds=SESSION_GONE_SECONDS),
        created_before=list_key(job),
    )
    if earlier < per_key:
        return None
    return (
        f"The key {caller.name!r} has {earlier} live sessions open, as many as one key may"
        " (STT_MAX_LIVE_SESSIONS_PER_KEY); close one first."
    )
