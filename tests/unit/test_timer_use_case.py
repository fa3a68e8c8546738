"""The timer use case on the in-memory stores (held to PostgreSQL's behaviour by tests/store_behaviour): a
warning then a breach as the clock reaches them, each once; a stopped clock fires nothing; the timers of an
unreadable snapshot set aside, and fired once it is repaired."""

from __future__ import annotations

from datetime import timedelta

from service.app.commands import Submission, run_command
from service.app.intake import IntakeRules, apply_signals
from service.app.timers import REARM_AFTER, Fired, fire_due_timers, rearm_set_aside
from service.domain.commands import Acknowledge, CommandRules
from service.domain.events import SlaBreached, SlaWarned
from service.domain.severity import load_default_policy
from service.domain.signals import Channel, Signal, SignalKind
from service.domain.sla import SlaPolicy
from service.domain.workflow import Actor
from tests.cases import CASE_IDS
from tests.fakes import FakeCommandStore, FakeDatabase, FakeIntakeStore, FakeTimerStore

HOUR = timedelta(hours=1)
SLA = SlaPolicy(
    first_response={Channel.CHAT: HOUR}, warning_fraction=0.75
)  # warned at 45 min, breached at 1 h
RULES = IntakeRules(load_default_policy(), SLA, timedelta(days=30), CASE_IDS)


class NoWords:
    def compound(self, text: str | None) -> float | None:
        return None


async def opened(database: FakeDatabase, *customers: str) -> list[str]:
    """A case for each customer, opened by a chat survey's failing score now; their ids."""
    now = database.clock.now()
    signals = [
        Signal(
            source="survey",
            id=f"nps-{c}",
            kind=SignalKind.NPS,
            occurred_at=now,
            received_at=now,
            customer_id=c,
            channel=Channel.CHAT,
            score=2,
        )
        for c in customers
    ]
    result = await apply_signals(
        signals, {}, "g", FakeIntakeStore(database), RULES, NoWords(), database.clock
    )
    return [a.case_id for a in result.applied if a.case_id is not None]


def fired(results: list[Fired]) -> list[tuple[str, str, str]]:
    return [(f.timer.case_id, f.event.type, f.event.sla) for f in results if f.event is not None]


async def test_a_warning_then_a_breach_fire_as_the_clock_reaches_them_and_each_fires_once() -> None:
    database = FakeDatabase()
    timers = FakeTimerStore(database)
    [case_id] = await opened(database, "cust-1")
    assert await fire_due_timers(timers, SLA, 100) == []
    database.clock.advance(45 * timedelta(minutes=1))
    [warned] = await fire_due_timers(timers, SLA, 100)
    assert fired([warned]) == [(case_id, "case.sla_warning", "first_response")] and warned.lag_seconds == 0
    assert await fire_due_timers(timers, SLA, 100) == []
    database.clock.advance(15 * timedelta(minutes=1))
    assert fired(await fire_due_timers(timers, SLA, 100)) == [
        (case_id, "case.sla_breached", "first_response")
    ]
    assert await fire_due_timers(timers, SLA, 100) == []
    stream = database.held.events[case_id]
    assert [type(e) for e in stream[-2:]] == [SlaWarned, SlaBreached]
    assert database.held.cases[case_id].version == len(stream)


async def test_a_clock_stopped_before_its_deadline_fires_nothing_and_the_running_one_still_fires() -> None:
    database = FakeDatabase()
    [case_id] = await opened(database, "cust-1")
    acknowledge = Submission(Acknowledge(), Actor("ana", "agent"), case_id)
    await run_command(acknowledge, FakeCommandStore(database), CommandRules(SLA))  # the first response
    database.clock.advance(2 * HOUR)
    assert await fire_due_timers(FakeTimerStore(database), SLA, 100) == []
    database.clock.advance(timedelta(days=30))  # the resolution clock still runs
    assert sorted(fired(await fire_due_timers(FakeTimerStore(database), SLA, 100))) == [
        (case_id, "case.sla_breached", "resolution"),
        (case_id, "case.sla_warning", "resolution"),
    ]


async def test_the_timers_of_an_unreadable_case_are_set_aside_and_fire_once_it_is_repaired() -> None:
    database = FakeDatabase()
    timers = FakeTimerStore(database)
    good, bad = await opened(database, "cust-1", "cust-2")
    await database.damage(bad)
    database.clock.advance(HOUR)
    first = await fire_due_timers(timers, SLA, 100)
    assert {f.timer.case_id for f in first if f.event is not None} == {good}
    assert await fire_due_timers(timers, SLA, 100) == []  # set aside: not claimed again and again
    database.clock.advance(REARM_AFTER)
    assert await rearm_set_aside(timers) == []  # still unreadable
    await database.repair(bad)
    assert await rearm_set_aside(timers) == []  # looked at again only REARM_AFTER after the last look
    database.clock.advance(REARM_AFTER)
    assert await rearm_set_aside(timers) == [bad]
    again = await fire_due_timers(timers, SLA, 100)
    assert sorted(fired(again)) == [
        (bad, "case.sla_breached", "first_response"),
        (bad, "case.sla_warning", "first_response"),
    ]
    assert await fire_due_timers(timers, SLA, 100) == []
