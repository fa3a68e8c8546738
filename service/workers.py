"""Background loops every instance runs besides the consumer: firing due SLA timers."""

from __future__ import annotations

import asyncio
import time

import structlog

from service.adapters.retry import keep_running
from service.app.timers import Fired, TimerStore, fire_due_timers, rearm_set_aside
from service.domain.events import SlaBreached
from service.domain.sla import SlaPolicy
from service.observability import ISOLATED_RECORDS, SLA_BREACHES, SLA_WARNINGS, TIMER_LAG

log = structlog.get_logger()
REARM_EVERY_SECONDS = 5.0


async def fire_timers_forever(
    store: TimerStore, sla: SlaPolicy, limit: int = 1000, idle_seconds: float = 0.1
) -> None:
    """Poll for due timers (an index range scan on unfired rows); a full claim polls again at once.

    A database that restarts or is unreachable (or a race lost too often) is waited out by the one retry
    policy; timers that fell due meanwhile are claimed when it is back. Firing is one transaction per claim
    (the timers marked fired with their events), so an interrupted claim is simply claimed again.
    """

    async def turn() -> None:
        rearm_at = 0.0
        while True:
            if time.monotonic() >= rearm_at:  # an index scan of set-aside rows (usually none), now and then
                await rearm_set_aside(store)
                rearm_at = time.monotonic() + REARM_EVERY_SECONDS
            fired = await fire_due_timers(store, sla, limit)
            _observe(fired)
            if len(fired) < limit:
                await asyncio.sleep(idle_seconds)

    await keep_running("sla timers", turn)


def _observe(fired: list[Fired]) -> None:
    for f in fired:
        TIMER_LAG.observe(max(f.lag_seconds, 0.0))
        if f.fault is not None:
            ISOLATED_RECORDS.labels("timer").inc()
            log.error("timer_isolated", case_id=f.timer.case_id, sla=str(f.timer.sla), error=f.fault)
        if f.event is None:
            continue
        counter = SLA_BREACHES if isinstance(f.event, SlaBreached) else SLA_WARNINGS
        counter.labels(f.event.severity.value, str(f.event.sla)).inc()
        log.info(
            "sla_fired",
            case_id=f.event.case_id,
            customer_id=f.event.customer_id,
            type=f.event.type,
            sla=str(f.event.sla),
            lag_seconds=round(f.lag_seconds, 3),
        )
