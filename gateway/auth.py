"""API keys: when the deployment sets `STT_API_KEYS`, each request must bring one of them as a
bearer token, the way OpenAI's clients send theirs.

A key is written `name:secret`, or as a bare secret that is then named after a hash of it. The
name is what job documents, logs and metrics show; the secret is never written anywhere.
"""

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

bearer = HTTPBearer(auto_error=False, description="One of the deployment's STT_API_KEYS.")

KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Unauthorized(Exception):
    """The request brought no API key, or one this deployment does not know."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    secret: bytes


def named_keys(keys: tuple[SecretStr, ...]) -> list[ApiKey]:
    named = []
    for key in keys:
        value = key.get_secret_value()
        name, colon, secret = value.partition(":")
        if not (colon and secret and KEY_NAME.fullmatch(name)):
            name, secret = "key-" + hashlib.sha256(value.encode()).hexdigest()[:8], value
        named.append(ApiKey(name, secret.encode()))
    return named


def caller_of(request: Request) -> str | None:
    """The name of the key the request came with; None while the service runs without keys."""
    caller: str | None = getattr(request.state, "caller", None)
    return caller


def api_key_check(
    keys: tuple[SecretStr, ...],
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[None]]:
    known = named_keys(keys)

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        # Compared in constant time, and with every key, so timing tells nothing about them.
        matches = [key for key in known if hmac.compare_digest(given, key.secret)]
        if not given or not matches:
            raise Unauthorized
        request.state.caller = matches[0].name

    return check
