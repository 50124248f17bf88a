"""API keys: when the deployment sets `STT_API_KEYS`, each request must bring one of them as a
bearer token, the way OpenAI's clients send theirs."""

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

bearer = HTTPBearer(auto_error=False, description="One of the deployment's STT_API_KEYS.")


class Unauthorized(Exception):
    """The request brought no API key, or one this deployment does not know."""


def api_key_check(
    keys: tuple[SecretStr, ...],
) -> Callable[[HTTPAuthorizationCredentials | None], Awaitable[None]]:
    known = [key.get_secret_value().encode() for key in keys]

    async def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        # Compared in constant time, and with every key, so timing tells nothing about them.
        matches = [hmac.compare_digest(given, key) for key in known]
        if not given or not any(matches):
            raise Unauthorized

    return check
