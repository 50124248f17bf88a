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


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the name of its key (None while the service runs without keys), and
    whether it sees every job (an admin key, or no keys at all) or only its own."""

    name: str | None
    sees_all: bool

    def may_see(self, owner: str | None) -> bool:
        return self.sees_all or owner == self.name


OPEN = Caller(None, sees_all=True)


def caller_of(request: Request) -> Caller:
    caller: Caller = getattr(request.state, "caller", OPEN)
    return caller


def api_key_check(
    keys: tuple[SecretStr, ...], admin_keys: tuple[SecretStr, ...] = ()
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[None]]:
    caller_with = key_matcher(keys, admin_keys)

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        caller = caller_with(credentials.credentials if credentials is not None else "")
        if caller is None:
            raise Unauthorized
        request.state.caller = caller

    return check


def key_matcher(
    keys: tuple[SecretStr, ...], admin_keys: tuple[SecretStr, ...] = ()
) -> Callable[[str], Caller | None]:
    """Who a presented secret belongs to; None for a missing or unknown one."""
    known = [(key, False) for key in named_keys(keys)]
    known += [(key, True) for key in named_keys(admin_keys)]

    def caller_with(secret: str) -> Caller | None:
        given = secret.encode()
        # Compared in constant time, and with every key, so timing tells nothing about them.
        matches = [(key, admin) for key, admin in known if hmac.compare_digest(given, key.secret)]
        if not given or not matches:
            return None
        key, admin = matches[0]
        return Caller(key.name, sees_all=admin)

    return caller_with
