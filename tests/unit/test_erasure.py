"""Erasing a customer: who may, who is refused and why, what the cases keep, and which dead letters a replay
skips."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from service.adapters.kafka.dlq import SKIP_ERASED, DeadLetter, replay
from service.adapters.kafka.outgoing import OutgoingTopics, to_messages
from service.app.ports import LoggedEvent
from service.domain.case import (
    CaseStatus,
    Compensation,
    CompensationStatus,
    Resolution,
    ResolutionType,
    Step,
    StepKind,
    evolve,
)
from service.domain.erasure import decide_erasure
from service.domain.errors import NotAllowed, WrongState
from service.domain.events import CompensationKind
from service.domain.personal import ERASED_TEXT
from service.domain.registry import EVENTS
from service.domain.workflow import Actor
from tests.cases import T0, open_case

OWNER, MANAGER = Actor("olga", "owner"), Actor("mia", "manager")
NOW = T0 + timedelta(days=10)


def resolved(case_id: str, ordinal: int, **changes: object) -> object:
    return open_case(
        case_id,
        "cust-9",
        ordinal=ordinal,
        status=CaseStatus.RESOLVED,
        summary="the ceiling leaks",
        steps=(Step(step_id="step-1", kind=StepKind.CALL_CUSTOMER, added_by="ana", added_at=T0, notes="she cried"),),
        resolution=Resolution(
            resolution_type=ResolutionType.APOLOGY_ONLY,
            root_cause="scheduling",
            prevention_action="call Mrs Smith first",
            resolved_by="mia",
            resolved_at=T0,
        ),
        **changes,
    )


def compensation(status: CompensationStatus) -> Compensation:
    return Compensation(
        request_id="r-1",
        kind=CompensationKind.REFUND,
        amount=Decimal("20"),
        currency="EUR",
        reason="for the wait",
        requested_by="ana",
        requested_at=T0,
        status=status,
    )


def test_only_an_owner_erases_and_never_a_customer_still_being_served() -> None:
    done = [resolved("c-1", 1)]
    with pytest.raises(NotAllowed, match="owner"):
        decide_erasure(done, "cust-9", "erased-x", MANAGER, NOW)
    with pytest.raises(WrongState, match="open case c-2"):
        decide_erasure([*done, open_case("c-2", "cust-9", ordinal=2)], "cust-9", "erased-x", OWNER, NOW)
    for waiting in (CompensationStatus.AWAITING_APPROVAL, CompensationStatus.REQUESTED):
        with pytest.raises(WrongState, match="compensation r-1 on case c-1"):
            decide_erasure([resolved("c-1", 1, compensations=(compensation(waiting),))], "cust-9", "e", OWNER, NOW)
    for answered in (CompensationStatus.SETTLED, CompensationStatus.FAILED):
        assert decide_erasure([resolved("c-1", 1, compensations=(compensation(answered),))], "cust-9", "e", OWNER, NOW)


def test_every_case_keeps_its_counts_under_the_pseudonym_and_only_the_latest_names_the_customer() -> None:
    cases = [resolved("c-2", 2, compensations=(compensation(CompensationStatus.SETTLED),)), resolved("c-1", 1)]
    events = decide_erasure(cases, "cust-9", "erased-p", OWNER, NOW)
    assert [e.case_id for e in events] == ["c-1", "c-2"]
    assert [(e.customer_id, e.case_ids) for e in events] == [(None, ()), ("cust-9", ("c-1", "c-2"))]
    after = evolve(cases[0], events[1])
    assert (after.customer_id, after.erased_at, after.version) == ("erased-p", NOW, cases[0].version + 1)
    assert after.summary == after.steps[0].notes == after.resolution.prevention_action == ERASED_TEXT  # type: ignore[union-attr]
    assert after.compensations[0].reason == ERASED_TEXT
    kept = ("severity", "status", "ordinal", "opened_at", "resolution_deadline")
    assert all(getattr(after, f) == getattr(cases[0], f) for f in kept)
    assert after.resolution.root_cause == "scheduling" and after.compensations[0].amount == Decimal("20")  # type: ignore[union-attr]


def _stored(event: object, position: int = 7) -> LoggedEvent:
    type_ = event.type  # type: ignore[attr-defined]
    data = EVENTS[type_].adapter.dump_json(event).decode()
    return LoggedEvent(position, event.case_id, 2, "0b6f1d0e-8a52-4c4e-9a43-2f1f3f7d9c10", type_, data, T0, None, 1)  # type: ignore[attr-defined]


def test_the_latest_cases_erasure_goes_out_as_recovery_customer_erased_and_no_case_record_names_the_customer() -> None:
    older, latest = decide_erasure([resolved("c-1", 1), resolved("c-2", 2)], "cust-9", "erased-p", OWNER, NOW)
    topics = OutgoingTopics("case-events", "sla")
    [one] = to_messages(_stored(older), topics)
    case_record, notice = to_messages(_stored(latest), topics)
    assert b"cust-9" not in one.value and b"cust-9" not in case_record.value
    assert dict(notice.headers)["ce_type"] == b"recovery.customer.erased" and notice.key == b"c-2"
    assert json.loads(notice.value) == {
        "customer_id": "cust-9",
        "pseudonym": "erased-p",
        "case_ids": ["c-1", "c-2"],
        "erased_at": "2026-03-12T09:00:00Z",
        "erased_by": "olga",
    }
    assert to_messages(_stored(latest), topics)[1].event_id == notice.event_id  # a re-publish repeats the id
    forgotten = replace(latest, customer_id=None)  # the store nulls the id once it is out
    assert len(to_messages(_stored(forgotten), topics)) == 1


def _letter(offset: int, customer: str) -> DeadLetter:
    headers = (("dlq_topic", b"signals"), ("dlq_partition", b"0"), ("dlq_offset", str(offset).encode()), ("ce_id", b"x"))
    return DeadLetter(0, offset, T0, None, json.dumps({"customer_id": customer}).encode(), headers)


def test_a_replay_skips_the_dead_letters_of_erased_customers() -> None:
    async def letters() -> AsyncIterator[DeadLetter]:
        for i, customer in enumerate(["gone", "kept", "gone"]):
            yield _letter(i, customer)

    async def erased(customer: str) -> bool:
        return customer == "gone"

    report = asyncio.run(replay(letters(), None, ["signals"], erased=erased))
    assert report.replayed == 1 and report.skipped[SKIP_ERASED] == 2
