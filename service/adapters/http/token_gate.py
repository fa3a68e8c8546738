"""The one check of a presented API token, for the API and the console's sign-in alike, with failures throttled.

Each client address has a bucket of RECOVERY_AUTH_FAILURES_PER_MINUTE failures, refilled at that many a
minute. While a client's bucket is empty it is answered 429 with Retry-After before its token is looked at,
so a right guess goes no faster than a wrong one. At most MAX_CLIENTS addresses are tracked, in this process
(each replica throttles alone); the one whose last failure is oldest is forgotten first. The address is the
peer's or, behind a proxy in RECOVERY_FORWARDED_ALLOW_IPS, the one the proxy forwards (uvicorn rewrites it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

import structlog
from fastapi import Request

from service.api_tokens import ApiToken, ApiTokens
from service.observability import AUTH_FAILURES

log = structlog.get_logger()

MAX_CLIENTS = 10_000
Surface = Literal["api", "console"]


class TooManyFailures(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications from this address: try again in {retry_after} s")
        self.retry_after = retry_after


class FailureThrottle:
    """A token bucket of failures per client address, in memory, bounded to max_clients addresses."""

    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS
    ) -> None:
        self._full, self._rate = float(per_minute), per_minute / 60.0
        self._clock, self._max = clock, max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (failures left, when), oldest first

    def retry_after(self, client: str) -> float:
        """Seconds until the client may try again; 0 when it may now."""
        left = self._left(client)
        return 0.0 if left >= 1 else (1 - left) / self._rate

    def failed(self, client: str) -> None:
        left = self._left(client)
        self._buckets.pop(client, None)  # then re-inserted last: the most recent failure
        self._buckets[client] = (left - 1, self._clock())
        if len(self._buckets) > self._max:
            del self._buckets[next(iter(self._buckets))]

    def _left(self, client: str) -> float:
        if client not in self._buckets:
            return self._full
        left, when = self._buckets[client]
        return min(self._full, left + (self._clock() - when) * self._rate)


class TokenGate:
    """Tokens checked by digest, failures counted per client and in recovery_auth_failures_total."""

    def __init__(self, tokens: ApiTokens, throttle: FailureThrottle) -> None:
        self.tokens, self._throttle = tokens, throttle

    def actor_of(self, client: str, token: str, surface: Surface) -> ApiToken | None:
        """The token's actor, or None (a failure); raises TooManyFailures while the client is throttled."""
        wait = self._throttle.retry_after(client)
        if wait > 0:
            AUTH_FAILURES.labels(surface, "throttled").inc()
            raise TooManyFailures(math.ceil(wait))
        actor = self.tokens.actor_of(token)
        if actor is None:
            self._throttle.failed(client)
            AUTH_FAILURES.labels(surface, "unknown_token").inc()
            if self._throttle.retry_after(client) > 0:  # once per emptied budget: later tries are refused first
                log.warning("authentication_throttled", surface=surface, client=client)
        return actor


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"
