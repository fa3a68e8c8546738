"""The stored failures as incident detection saw them, read back for `recovery incidents backtest`.

A failure is a signal_log row with a severity; detection was given those with a service or a region
(service.app.intake), so those alone are read. The rows come in time order through a cursor, in one read-only
snapshot, a page at a time: a span of millions of failures never sits in memory whole. Only the columns a
Sighting holds are read, never the text. There is no index on occurred_at alone (the intake must not pay for
one): the read scans signal_log once, and sorts the span's failures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from service.adapters.postgres.case_writes import Connection
from service.domain.incidents import Sighting

PAGE = 5_000

_FAILURES = (
    "SELECT occurred_at, customer_id, kind, category, service, region FROM signal_log"
    " WHERE severity IS NOT NULL AND (service <> '' OR region <> '')"
    " AND occurred_at > $1 AND occurred_at <= $2 ORDER BY occurred_at"
)


async def stored_failures(
    conn: Connection, after: datetime, until: datetime, page: int = PAGE
) -> AsyncIterator[list[Sighting]]:
    """The failures with occurred_at in (after, until], oldest first, in pages of `page`."""
    values: dict[str, str] = {}  # one string for each kind, category, service and region, however many rows
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(_FAILURES, after, until)
        while rows := await cursor.fetch(page):
            yield [
                Sighting(
                    r[0],
                    r[1],
                    values.setdefault(r[2], r[2]),
                    values.setdefault(r[3], r[3]),
                    None if r[4] is None else values.setdefault(r[4], r[4]),
                    None if r[5] is None else values.setdefault(r[5], r[5]),
                )
                for r in rows
            ]
