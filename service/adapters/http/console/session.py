"""Console sessions: a signed, HttpOnly, SameSite=Strict cookie naming the token by its hash, with a CSRF token.

The signing key is RECOVERY_CONSOLE_SESSION_KEY, shared by every replica; unset, a random key per process (sessions
end when the process restarts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request, Response

from service.config import ApiToken

COOKIE = "recovery_console"
PATH = "/console"
LIFETIME_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    token_hash: str | None  # None: not signed in yet (the sign-in form still has its CSRF token)
    csrf: str
    expires: int


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Issues and checks session cookies signed with the configured key, or one made when the process starts."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def new(self, token: str | None) -> Session:
        hashed = None if token is None else token_hash(token)
        return Session(hashed, secrets.token_urlsafe(32), int(time.time()) + LIFETIME_SECONDS)

    def read(self, request: Request) -> Session | None:
        """The request's session when its cookie is ours, intact and not expired."""
        raw = request.cookies.get(COOKIE, "")
        payload, _, signature = raw.rpartition(".")
        if not payload or not _same(signature, self._sign(payload)):
            return None
        try:
            fields = json.loads(base64.urlsafe_b64decode(payload.encode()))
            hashed, csrf, expires = fields["k"], fields["c"], fields["e"]
            if not (hashed is None or isinstance(hashed, str)) or not isinstance(csrf, str):
                return None
            session = Session(hashed, csrf, int(expires))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def write(self, response: Response, request: Request, session: Session) -> None:
        body = json.dumps({"k": session.token_hash, "c": session.csrf, "e": session.expires})
        payload = base64.urlsafe_b64encode(body.encode()).decode()
        response.set_cookie(
            COOKIE,
            f"{payload}.{self._sign(payload)}",
            max_age=LIFETIME_SECONDS,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()


def clear(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def actor_of(session: Session | None, tokens: dict[str, ApiToken]) -> ApiToken | None:
    """The actor whose token the session names, while that token is still configured."""
    if session is None or session.token_hash is None:
        return None
    for token, actor in tokens.items():
        if _same(token_hash(token), session.token_hash):
            return actor
    return None


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    return session is not None and sent is not None and _same(session.csrf, sent)


def _same(a: str, b: str) -> bool:
    """Constant-time equality of any two strings (compare_digest refuses non-ASCII str, so compare bytes)."""
    return hmac.compare_digest(a.encode(), b.encode())
