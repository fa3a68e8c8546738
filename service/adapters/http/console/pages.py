"""Rendering console pages: templates, security headers, and the request's session and actor."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from service.adapters.http.bounds import MAX_BODY_BYTES
from service.adapters.http.console.session import Session, Sessions
from service.api_tokens import ApiToken
from service.app.commands import CommandStore
from service.app.reads import CaseReads
from service.domain.commands import CommandRules
from service.domain.trends import TrendPolicy

HERE = Path(__file__).parent
PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f-\x9f]*$")
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
# every asset is the service's own: no CDN, no inline script
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class TooLarge(ValueError):
    pass


@dataclass(frozen=True)
class Console:
    """What every console route works with: the API's stores and rules, and the session keys."""

    reads_of: Callable[[], CaseReads]
    store_of: Callable[[], CommandStore]
    rules: CommandRules  # the deciders' (root causes: the taxonomy a resolution's tag is chosen from)
    trends: TrendPolicy
    sessions: Sessions


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(_HEADERS)
    return response


def go(path: str) -> RedirectResponse:
    """After a POST, the browser GETs the page again (a reload never repeats the action)."""
    return RedirectResponse(path, 303)


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form of at most MAX_BODY_BYTES; a field sent twice keeps its last value."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise TooLarge(f"a form may have at most {MAX_BODY_BYTES} bytes")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def signed_in(request: Request, sessions: Sessions) -> tuple[Session, ApiToken] | None:
    session = await sessions.read(request)
    return None if session is None or session.actor is None else (session, session.actor)


def expired(request: Request) -> HTMLResponse:
    message = "This form had expired or was not sent by the console. Reload the page and try again."
    return render(request, "refused.html", 403, csrf="", actor=None, message=message)
