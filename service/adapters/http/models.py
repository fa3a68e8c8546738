"""The JSON the HTTP API answers with (and documents in /openapi.json)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.app.reads import CaseRead, StoredEvent
from service.domain.case import CASE_STATE, paused
from service.domain.clock_reports import ClockReport, clock_reports
from service.domain.money import plain
from service.domain.pauses import paused_time
from service.domain.sla import SlaPolicy


class SignalView(BaseModel):
    source: str
    id: str
    type: str = Field(description="The signal's CloudEvents type, e.g. recovery.signal.nps.")
    severity: str
    reasons: list[str] = Field(
        description="The classification rules that fired for this signal, and the clock rule (clock:future_time,"
        " clock:too_old) when its clocks started at arrival instead of at its time."
    )
    policy_version: str | None = Field(
        description="Version of the classification policy that gave the reasons; null for signals logged before it was kept."
    )
    category: str
    occurred_at: datetime
    received_at: datetime
    text: str | None = Field(
        default=None,
        description="What the customer said (the complaint, comment, review, ticket or callback reason), as"
        ' received; "[erased]" once the customer\'s key is destroyed; null when the signal had no words or was'
        " logged before they were kept. Personal data: show it to staff only.",
    )


class PauseView(BaseModel):
    reason: str = Field(description="awaiting_customer, awaiting_parts or awaiting_third_party")
    started_at: datetime = Field(description="Since when the case is paused.")
    until: datetime | None = Field(description="The end staff asked for, if any.")
    resumes_at: datetime | None = Field(
        description="When it resumes by itself: `until`, or earlier when the reason's budget runs out first."
    )


class MoneyView(BaseModel):
    amount: str = Field(
        description="A decimal in plain notation, within the currency's minor unit, e.g. 120.50."
    )
    currency: str = Field(description="ISO 4217 code.")


class StepView(BaseModel):
    step_id: str = Field(description="step-1, step-2, … in the order they were added.")
    kind: str = Field(description="One of the step kinds, e.g. call_customer.")
    added_by: str
    added_at: datetime
    outcome: str | None = Field(description="completed, skipped or failed; null until recorded.")
    notes: str | None
    recorded_by: str | None
    recorded_at: datetime | None


class CompensationView(BaseModel):
    request_id: str = Field(description="Billing's idempotency key: one request, ever.")
    kind: str = Field(description="refund, credit or comped_service")
    amount: str = Field(description="A decimal in plain notation, within the currency's minor unit.")
    currency: str
    reason: str
    requested_by: str
    requested_at: datetime
    status: str = Field(description="awaiting_approval, requested (sent to billing), settled or failed")
    needs_approval: list[str] = Field(
        description="Why it waits for a manager or an owner; empty when it did not."
    )
    approved_by: str | None
    reference: str | None = Field(description="Billing's reference once settled.")
    failure: str | None = Field(description="Billing's reason once failed.")


class ResolutionView(BaseModel):
    resolution_type: str
    root_cause: str = Field(description="A tag from the root-cause taxonomy.")
    prevention_action: str
    resolved_by: str
    resolved_at: datetime


class CaseView(BaseModel):
    case_id: str
    customer_id: str
    status: str = Field(description="open, resolved or closed")
    summary: str | None = Field(
        default=None,
        description="What went wrong, in one line: the opening signal's first sentence (or the reason of a case"
        ' opened by hand) until staff rewrite it (PUT .../summary); "[erased]" once the customer\'s key is'
        " destroyed; null when there were no words. Personal data.",
    )
    severity: str
    customer_tier: str = Field(description="The customer's tier when the case opened, e.g. standard or vip.")
    channel: str | None = Field(description="The channel of the opening signal; null when it named none.")
    amount_at_stake: MoneyView | None = Field(
        description="The largest value at stake any of the case's signals named, in the case's currency."
    )
    opened_at: datetime = Field(
        description="When the clocks started: the opening signal's time, or its arrival when that time was too"
        " far ahead (clock:future_time) or too old (clock:too_old)."
    )
    received_at: datetime = Field(description="When the opening signal arrived.")
    first_response_deadline: datetime
    resolution_deadline: datetime
    owner: str | None
    acknowledged_at: datetime | None = Field(description="The first response: it stopped that clock.")
    resolved_at: datetime | None
    reopen_count: int
    signals: list[SignalView]
    steps: list[StepView] = Field(default_factory=list)
    compensations: list[CompensationView] = Field(default_factory=list)
    resolution: ResolutionView | None = None
    version: int
    paused: PauseView | None = Field(
        default=None, description="The pause the case is in now; null when none."
    )
    paused_seconds: dict[str, int] = Field(
        default_factory=dict,
        description="Wall time the case has spent paused, by reason (the current pause up to now): what each"
        " reason's budget has used.",
    )
    erased_at: datetime | None = Field(
        default=None,
        description="When an owner erased the customer's personal data (POST /v1/customers/{customer_id}/erase):"
        " `customer_id` is a pseudonym since and every text reads [erased]; null while it is held.",
    )
    incident_id: str | None = Field(
        default=None,
        description="The incident the case is part of (an outage worked as one: recovery.incidents.v1); null"
        " when it is part of none. A case links to one incident at most.",
    )

    @classmethod
    def of(cls, case: CaseRead, at: datetime | None = None) -> CaseView:
        """The case as it stands `at` (its paused time counted up to then; None: now)."""
        data = CASE_STATE.dump_python(case.state, mode="json")
        pause = paused(case.state)
        spent = paused_time(case.state, at or datetime.now(UTC)) if case.state.pauses else {}
        return cls.model_validate(
            {
                **data,
                "signals": [asdict(s) for s in case.signals],
                "paused": None if pause is None else PauseView(**asdict(pause)),
                "paused_seconds": {reason: int(t.total_seconds()) for reason, t in spent.items()},
            }
        )


class EventView(BaseModel):
    position: int
    version: int
    event_id: str
    type: str
    recorded_at: datetime
    data: dict[str, Any]

    @classmethod
    def of(cls, event: StoredEvent) -> EventView:
        return cls(
            position=event.position,
            version=event.version,
            event_id=event.event_id,
            type=event.type,
            recorded_at=event.recorded_at,
            data=json.loads(event.data),
        )


class CalendarView(BaseModel):
    name: str = Field(
        description="The calendar the clock counts in: one the SLA policy file names, or `24x7`."
    )
    zone: str = Field(description="The IANA time zone its opening hours are read in.")


class ClockView(BaseModel):
    """One SLA clock of a case, and why it is due when it is."""

    name: str = Field(description="first_response, resolution, or a named clock from the SLA policy file.")
    state: Literal["running", "paused", "stopped", "met", "breached"] = Field(
        description="met: stopped by its deadline; breached: past its deadline (running or stopped late);"
        " stopped: the case ended without this clock's goal; paused: the case's pause holds it (it honours"
        " pauses and had not breached): it neither counts, warns nor breaches, and its deadline and warning"
        " point move by the open time the pause took when it resumes."
    )
    started_at: datetime
    deadline: datetime
    warning_at: datetime = Field(description="When the pre-breach warning falls due.")
    stopped_at: datetime | None = Field(description="When the clock stopped (first response, resolution).")
    calendar: CalendarView
    business_seconds_elapsed: int = Field(
        description="Open time counted so far (until the stop, if stopped)."
    )
    business_seconds_left: int = Field(description="Open time left before the deadline, 0 when past it.")
    policy_version: str | None = Field(
        description="The SLA policy file's version that set the deadline; null: 24x7, before versions."
    )
    pausable: bool = Field(description="Whether a pause of the case stops this clock.")
    explanation: str = Field(description="One line: the window, its calendar and hours, from when, due when.")

    @classmethod
    def of(cls, clock: ClockReport, warning_at: datetime) -> ClockView:
        c = clock.clock
        return cls(
            name=c.name,
            state=clock.state.value,
            started_at=c.started_at,
            deadline=c.deadline,
            warning_at=warning_at,
            stopped_at=c.stopped_at,
            calendar=CalendarView(name=clock.calendar.name, zone=clock.calendar.zone.key),
            business_seconds_elapsed=int(clock.business_elapsed.total_seconds()),
            business_seconds_left=int(clock.business_left.total_seconds()),
            policy_version=c.policy_version,
            pausable=c.pausable,
            explanation=clock.explanation,
        )


class CustomerCompensationView(BaseModel):
    window_days: int = Field(description="The compensation limits' customer window, in days.")
    received: list[MoneyView] = Field(
        description="What the customer received in that window on all their cases (sent to billing or settled;"
        " not waiting, not failed), per currency: what counts against their limit."
    )


class CaseDetail(CaseView):
    clocks: list[ClockView] = Field(description="Every SLA clock of the case, as it stands now.")
    events: list[EventView] = Field(description="The case's full history, oldest first.")
    customer_compensation: CustomerCompensationView | None = Field(
        default=None, description="The customer's recent compensation across cases."
    )

    @classmethod
    def at(cls, case: CaseRead, events: list[StoredEvent], sla: SlaPolicy, now: datetime) -> CaseDetail:
        """The case, its clocks as they stand at `now` under the SLA policy, and its history."""
        clocks = [ClockView.of(c, sla.warning_of(c.clock)) for c in clock_reports(case.state, sla, now)]
        view = CaseView.of(case).model_dump()
        window = case.customer_window
        customer = None
        if window is not None:
            received = [MoneyView(amount=plain(a), currency=c) for c, a in case.customer_received.items()]
            customer = CustomerCompensationView(window_days=window.days, received=received)
        return cls(**view, clocks=clocks, events=[EventView.of(e) for e in events], customer_compensation=customer)


class CasePage(BaseModel):
    items: list[CaseView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class ErrorBody(BaseModel):
    """Every refusal, whatever its status: 4xx for the caller's request, 503 while the database is away."""

    error: str = Field(
        description="Machine-readable reason: unauthenticated, not_allowed, not_found, invalid_request, "
        "unknown_field, invalid_json, missing_field, invalid_value, wrong_state, invalid_cursor, body_too_large, "
        "unavailable."
    )
    detail: str = Field(description="A sentence for people saying why.")
    field: str | None = Field(
        description="The parameter, header or body field at fault (`body` for the body as a whole), or null."
    )


class RootCauseCount(BaseModel):
    tag: str
    count: int = Field(description="Cases resolved with this root cause within the window (closed ones too).")
    trend: bool = Field(description="`count` is at least `threshold`: a trend over the window asked for.")


class RootCauseTrends(BaseModel):
    window_days: int = Field(description="The trailing window counted over, in days.")
    threshold: int = Field(
        description="Cases in the window that make a trend (the configured trend threshold). Trend events are"
        " published for the configured trend window only, once per crossing."
    )
    tags: list[RootCauseCount]
