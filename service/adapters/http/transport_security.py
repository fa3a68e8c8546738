"""Strict-Transport-Security on every response, while the service is reached over HTTPS only
(RECOVERY_CONSOLE_COOKIE_SECURE): a browser that saw it once uses HTTPS for this host for a year.

Pure ASGI, as RequestMetrics is; a browser ignores the header on a plain-HTTP response, as the RFC says.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000"


class StrictTransportSecurity:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_hsts)
