"""Console sessions: the cookie holds a random session id only; the session itself is a row in PostgreSQL
(console_sessions), so every replica knows it and sign-out ends it at once.

Everything is keyed with RECOVERY_CONSOLE_SESSION_KEY (HMAC-SHA256; unset, a random key per process):
- a row holds the digest of its session id and of the token's digest, so the table presents no session and
  names no token;
- a session's anti-forgery token is derived from its id, so it is tied to that session and ends with it;
- before sign-in, the form's anti-forgery token comes from a short-lived signed cookie of its own: a visitor
  who has not signed in writes no row.
Both cookies are HttpOnly, SameSite=Strict, and Secure unless RECOVERY_CONSOLE_COOKIE_SECURE is false.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response

from service.api_tokens import ApiToken, ApiTokens, digest_of
from service.app.ports import Clock, ConsoleSessionStore, SessionTimeouts

COOKIE = "recovery_console"
FORM_COOKIE = "recovery_console_sign_in"
PATH = "/console"
FORM_LIFETIME = timedelta(hours=1)
_MAX_COOKIE = 200  # longer than any cookie this console sets: refused unread


@dataclass(frozen=True)
class Session:
    csrf: str
    actor: ApiToken | None  # None: the sign-in form's, before sign-in
    form_cookie: str | None = None  # a sign-in form's just made: its cookie, to write


class Sessions:
    """Starts, finds and ends sessions in the store, and writes and reads their cookies."""

    def __init__(
        self,
        store_of: Callable[[], ConsoleSessionStore],
        tokens: ApiTokens,
        key: bytes | None,
        timeouts: SessionTimeouts,
        secure: bool,
        clock: Clock,
    ) -> None:
        self._store_of, self._key, self._secure, self._clock = (
            store_of,
            key or secrets.token_bytes(32),
            secure,
            clock,
        )
        self.timeouts = timeouts
        self._actors = {self._keyed(b"token", d): actor for d, actor in tokens.by_digest().items()}

    def form(self, request: Request) -> Session | None:
        """The sign-in form's session, when its cookie is ours, intact and not expired."""
        nonce, _, rest = request.cookies.get(FORM_COOKIE, "")[:_MAX_COOKIE].partition(".")
        expires, _, signature = rest.partition(".")
        if not expires.isdigit() or not _same(signature, self._keyed(b"form", f"{nonce}.{expires}").hex()):
            return None
        if int(expires) <= self._clock.now().timestamp():
            return None
        return Session(self._csrf(nonce), None)

    def new_form(self) -> Session:
        nonce = secrets.token_urlsafe(32)
        expires = int((self._clock.now() + FORM_LIFETIME).timestamp())
        signature = self._keyed(b"form", f"{nonce}.{expires}").hex()
        return Session(self._csrf(nonce), None, f"{nonce}.{expires}.{signature}")

    def write_form(self, response: Response, session: Session) -> None:
        if session.form_cookie is not None:
            self._set(response, FORM_COOKIE, session.form_cookie, f"{PATH}/sign-in")

    async def start(self, response: Response, token: str, actor: ApiToken) -> None:
        """A new session for a token just checked: a new id, so a new anti-forgery token too."""
        session_id = secrets.token_urlsafe(32)
        token_digest = self._keyed(b"token", digest_of(token))
        await self._store_of().start(
            self._keyed(b"session", session_id), token_digest, actor.actor, self._clock.now()
        )
        self._set(response, COOKIE, session_id, PATH)
        response.delete_cookie(
            FORM_COOKIE, path=f"{PATH}/sign-in", secure=self._secure, httponly=True, samesite="strict"
        )

    async def read(self, request: Request) -> Session | None:
        """The request's live session with the actor of its token, while that token is still configured."""
        if not hasattr(request.state, "console_session"):  # once per request, however many ask
            request.state.console_session = await self._find(request.cookies.get(COOKIE, ""))
        found: Session | None = request.state.console_session
        return found

    async def end(self, request: Request, response: Response) -> None:
        """Sign-out: the row goes now, so the cookie is refused everywhere even if a copy of it is replayed."""
        session_id = request.cookies.get(COOKIE, "")
        if session_id and len(session_id) <= _MAX_COOKIE:
            await self._store_of().end(self._keyed(b"session", session_id))
        response.delete_cookie(COOKIE, path=PATH, secure=self._secure, httponly=True, samesite="strict")

    async def _find(self, session_id: str) -> Session | None:
        if not session_id or len(session_id) > _MAX_COOKIE:
            return None
        token_digest = await self._store_of().find(self._keyed(b"session", session_id), self._clock.now())
        actor = None if token_digest is None else self._actors.get(token_digest)
        return None if actor is None else Session(self._csrf(session_id), actor)

    def _set(self, response: Response, name: str, value: str, path: str) -> None:
        response.set_cookie(name, value, path=path, httponly=True, samesite="strict", secure=self._secure)

    def _csrf(self, nonce: str) -> str:
        return self._keyed(b"csrf", nonce).hex()

    def _keyed(self, purpose: bytes, value: str | bytes) -> bytes:
        data = value.encode() if isinstance(value, str) else value
        return hmac.new(self._key, purpose + b":" + data, hashlib.sha256).digest()


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    return session is not None and sent is not None and _same(session.csrf, sent)


def _same(a: str, b: str) -> bool:
    """Constant-time equality of any two strings (compare_digest refuses non-ASCII str, so compare bytes)."""
    return hmac.compare_digest(a.encode(), b.encode())
