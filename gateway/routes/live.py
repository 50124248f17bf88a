"""`/v1/realtime`: live sessions over a WebSocket (the sessions themselves are
gateway.live's). Its path is one of gateway.auth.PUBLIC_PATHS: browsers send the key as a
subprotocol, not a header, so the route finds its caller itself and refuses an unknown one."""

from fastapi import APIRouter, WebSocket

from gateway.auth import OPEN, Keys
from gateway.live.admission import SUBPROTOCOL_KEY_PREFIX, opening_refusal, presented_key
from gateway.live.events import SessionError
from gateway.live.protocol import CLOSE_POLICY, CLOSE_TRY_AGAIN_LATER
from gateway.live.session import LiveSession
from gateway.live.sessions import LiveSessions
from gateway.services import Services

router = APIRouter(tags=["live"])


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    sessions: LiveSessions = websocket.app.state.live_sessions
    key, subprotocol = presented_key(websocket)
    keys: Keys = websocket.app.state.keys
    caller = keys.caller(key.encode())
    await websocket.accept(subprotocol)
    session = LiveSession(websocket, services, sessions, caller or OPEN)
    if caller is None:
        await session.tell(
            SessionError(
                "invalid_api_key",
                "A valid API key is needed: send it as 'Authorization: Bearer <key>' or as the"
                f" subprotocol '{SUBPROTOCOL_KEY_PREFIX}<key>'.",
            )
        )
        await session.close(CLOSE_POLICY, "unauthorized")
        return
    refusal = await opening_refusal(sessions, services, caller)
    if refusal is not None:
        await session.tell(SessionError("session_limit_reached", refusal, kind="server_busy"))
        await session.close(CLOSE_TRY_AGAIN_LATER, "too many sessions")
        return
    with sessions.holding(session):
        await session.run()
