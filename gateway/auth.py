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

from fastapi import Request
from fastapi.security import HTTPBearer
from pydantic import SecretStr
from starlette.requests import HTTPConnection

# Declares the bearer scheme in the OpenAPI document; `authentication` does the checking.
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


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the name of its key (None while the service runs without keys), and
    whether it sees every job (an admin key, or no keys at all) or only its own."""

    name: str | None
    sees_all: bool

    def may_see(self, owner: str | None) -> bool:
        return self.sees_all or owner == self.name


OPEN = Caller(None, sees_all=True)


class Keys:
    """The deployment's API keys: which caller a bearer token names."""

    def __init__(self, keys: tuple[SecretStr, ...], admin_keys: tuple[SecretStr, ...]) -> None:
        self._known = [(key, False) for key in named_keys(keys)]
        self._known += [(key, True) for key in named_keys(admin_keys)]

    @property
    def required(self) -> bool:
        return bool(self._known)

    def caller(self, given: bytes) -> Caller | None:
        """The caller `given` names; OPEN while the deployment has no keys; None for a missing
        or unknown key."""
        if not self._known:
            return OPEN
        # Compared in constant time, and with every key, so timing tells nothing about them.
        matches = [
            (key, admin) for key, admin in self._known if hmac.compare_digest(given, key.secret)
        ]
        if not given or not matches:
            return None
        key, admin = matches[0]
        return Caller(key.name, sees_all=admin)


# The only paths answered without an API key: probes, metrics without key names, the page, the
# docs, and the live route (which finds its caller itself: browsers cannot send the header).
# Every other route refuses a request without a known key.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/", "/docs", "/redoc", "/v1/realtime"}
)


def authentication(keys: Keys) -> Callable[[HTTPConnection], Awaitable[Caller | None]]:
    """The dependency every route of the app has: it finds the caller, and refuses the request
    (Unauthorized) unless the caller's key is known or the route's path is one of
    PUBLIC_PATHS. A route is open only by being listed there."""

    # HTTPConnection, not Request: the WebSocket route has the dependency too.
    async def authenticate(request: HTTPConnection) -> Caller | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode() if scheme.lower() == "bearer" else b""
        caller = keys.caller(given)
        route = request.scope.get("route")
        if caller is None and getattr(route, "path", None) not in PUBLIC_PATHS:
            raise Unauthorized
        request.state.caller = caller
        return caller

    return authenticate


def caller_of(request: Request) -> Caller:
    """Who sent the request, as authentication found; Unauthorized when it found no one."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise Unauthorized
    return caller
