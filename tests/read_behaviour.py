"""What every CaseReads answers, fake or PostgreSQL, over cases written by the command use case: run on the fakes
by tests/unit/test_read_behaviour.py, on PostgreSQL by tests/integration/test_read_behaviour.py, so the routes
the fast tier tests read what the service reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from service.app.commands import CommandStore, Submission, run_command
from service.app.reads import CaseFilter, CaseReads
from service.domain.case import CaseState
from service.domain.commands import (
    Acknowledge,
    ApproveCompensation,
    Assign,
    Command,
    CommandRules,
    OpenByHand,
    RequestCompensation,
    Resolve,
)
from service.domain.events import CompensationKind, ResolutionType
from service.domain.severity import Severity
from service.domain.signals import Money, Tier
from service.domain.sla import SlaPolicy
from service.domain.workflow import Actor
from tests.cases import CASE_IDS

RULES = CommandRules(SlaPolicy(), root_causes=frozenset({"scheduling"}), case_ids=CASE_IDS)
MIA, ANA = Actor("mia", "manager"), Actor("ana", "agent")
Behaviour = Callable[[CommandStore, CaseReads], Awaitable[None]]


async def opened(store: CommandStore, customer_id: str, severity: Severity = Severity.MAJOR) -> CaseState:
    stake = Money(Decimal(1000), "EUR")
    command = OpenByHand(customer_id, severity, None, Tier.STANDARD, "escalated", stake)
    return (await run_command(Submission(command, MIA, None), store, RULES)).state


async def done(store: CommandStore, case: CaseState, command: Command, actor: Actor = MIA) -> CaseState:
    return (await run_command(Submission(command, actor, case.case_id), store, RULES)).state


def ids(page: tuple[list, str | None]) -> list[str]:  # type: ignore[type-arg]
    return [read.state.case_id for read in page[0]]


async def cases_list_soonest_deadline_first_a_page_at_a_time(store: CommandStore, reads: CaseReads) -> None:
    minor = await opened(store, "cust-1", Severity.MINOR)
    critical = await opened(store, "cust-2", Severity.CRITICAL)
    major = await opened(store, "cust-3", Severity.MAJOR)
    first = await reads.list_cases(CaseFilter(), 2, None)
    assert ids(first) == [critical.case_id, major.case_id] and first[1] is not None
    rest = await reads.list_cases(CaseFilter(), 2, first[1])
    assert ids(rest) == [minor.case_id] and rest[1] is None
    assert ids(await reads.list_cases(CaseFilter(severity="minor"), 10, None)) == [minor.case_id]
    assert ids(await reads.list_cases(CaseFilter(customer_id="cust-2"), 10, None)) == [critical.case_id]


async def filters_by_owner_status_and_assignment(store: CommandStore, reads: CaseReads) -> None:
    mine = await done(store, await opened(store, "cust-1"), Assign("ana"))
    nobodys = await opened(store, "cust-2")
    resolve = Resolve(ResolutionType.APOLOGY_ONLY, "scheduling", "buffer slots")
    resolved = await done(store, await opened(store, "cust-3"), resolve)
    assert ids(await reads.list_cases(CaseFilter(owner="ana"), 10, None)) == [mine.case_id]
    unassigned = ids(await reads.list_cases(CaseFilter(unassigned=True, status="open"), 10, None))
    assert unassigned == [nobodys.case_id]
    assert ids(await reads.list_cases(CaseFilter(status="resolved"), 10, None)) == [resolved.case_id]
    queue = ids(await reads.queue(CaseFilter(), 10, None))
    assert sorted(queue) == sorted([mine.case_id, nobodys.case_id])  # open cases only


async def the_queue_orders_by_the_next_running_deadline_a_page_at_a_time(
    store: CommandStore, reads: CaseReads
) -> None:
    # acknowledged: the first response is met, so the resolution deadline (by severity) is the next one
    later = await done(store, await opened(store, "cust-1", Severity.MINOR), Acknowledge())
    sooner = await done(store, await opened(store, "cust-2", Severity.CRITICAL), Acknowledge())
    middle = await done(store, await opened(store, "cust-3", Severity.MODERATE), Acknowledge())
    first = await reads.queue(CaseFilter(), 2, None)
    assert ids(first) == [sooner.case_id, middle.case_id]
    assert ids(await reads.queue(CaseFilter(), 2, first[1])) == [later.case_id]
    due = await reads.queue(CaseFilter(next_deadline_before=sooner.resolution_deadline), 10, None)
    assert ids(due) == [sooner.case_id]


async def a_case_reads_with_its_history_in_version_order(store: CommandStore, reads: CaseReads) -> None:
    case = await done(store, await opened(store, "cust-1"), Assign("ana"))
    found = await reads.get_case(case.case_id)
    assert found is not None
    read, history = found
    assert read.state == case
    assert [(e.version, e.type) for e in history] == [(1, "case.opened"), (2, "case.assigned")]
    assert history[0].position < history[1].position and len({e.event_id for e in history}) == 2
    assert '"owner":"ana"' in history[1].data.replace(" ", "")
    assert await reads.get_case("no-such-case") is None


async def what_a_customer_received_on_their_other_cases_counts_on_each(
    store: CommandStore, reads: CaseReads
) -> None:
    first = await opened(store, "cust-1")
    await done(store, first, RequestCompensation(CompensationKind.CREDIT, Decimal("20.00"), "EUR", "late"), ANA)
    resolve = Resolve(ResolutionType.APOLOGY_ONLY, "scheduling", "buffer slots")
    await done(store, (await reads.get_case(first.case_id))[0].state, resolve)  # type: ignore[index]
    second = await opened(store, "cust-1")
    found = await reads.get_case(second.case_id)
    assert found is not None and found[0].customer_received == {"EUR": Decimal("20.00")}


async def approvals_list_what_waits_and_counts_answer_per_severity_and_root_cause(
    store: CommandStore, reads: CaseReads
) -> None:
    case = await opened(store, "cust-1")
    large = RequestCompensation(CompensationKind.REFUND, Decimal("400.00"), "EUR", "repair")
    waiting = await done(store, case, large, ANA)
    await opened(store, "cust-2", Severity.CRITICAL)
    listed, cursor = await reads.awaiting_approval(10, None)
    assert [c.case_id for c in listed] == [case.case_id] and cursor is None
    await done(store, waiting, ApproveCompensation(waiting.compensations[0].request_id))
    assert (await reads.awaiting_approval(10, None))[0] == []
    assert await reads.open_cases_by_severity() == {"major": 1, "critical": 1}
    assert await reads.root_causes(30) == []
    await done(store, (await reads.get_case(case.case_id))[0].state, Resolve(ResolutionType.APOLOGY_ONLY, "scheduling", "buffer slots"))  # type: ignore[index]
    assert await reads.root_causes(30) == [("scheduling", 1)]
    assert await reads.open_cases_by_severity() == {"critical": 1}


BEHAVIOURS: list[Behaviour] = [
    cases_list_soonest_deadline_first_a_page_at_a_time,
    filters_by_owner_status_and_assignment,
    the_queue_orders_by_the_next_running_deadline_a_page_at_a_time,
    a_case_reads_with_its_history_in_version_order,
    what_a_customer_received_on_their_other_cases_counts_on_each,
    approvals_list_what_waits_and_counts_answer_per_severity_and_root_cause,
]
