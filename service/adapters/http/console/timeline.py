"""A case's history as sentences: each stored event type read as what happened, who did it and when.

Only what staff wrote on the case is quoted (notes, reasons, prevention actions); a signal is shown by its
type, severity and reasons, never its customer's text (the event log does not hold it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.app.reads import StoredEvent


@dataclass(frozen=True)
class Line:
    at: datetime
    version: int
    sentence: str
    actor: str | None
    quote: str | None  # what staff wrote with it, shown as written


def timeline(events: list[StoredEvent]) -> list[Line]:
    """The whole history, oldest first."""
    return [_line(e) for e in events]


def _line(event: StoredEvent) -> Line:
    data: dict[str, Any] = json.loads(event.data)
    say, quoted = _SENTENCES.get(event.type, (_unknown(event.type), None))
    actor = data.get("actor")
    quote = data.get(quoted) if quoted else None
    return Line(
        event.recorded_at,
        event.version,
        say(data),
        actor if isinstance(actor, str) else None,
        quote if isinstance(quote, str) and quote.strip() else None,
    )


def _time(value: Any) -> str:
    return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M UTC")


def _words(value: Any) -> str:
    return str(value).replace("_", " ")


def _signal(signal: dict[str, Any] | None) -> str:
    if not signal:
        return "opened by hand"
    reasons = ", ".join(signal.get("reasons") or []) or "no rule fired"
    return f"from a {_words(signal.get('type'))} signal ({signal.get('severity')}: {reasons})"


def _money(data: dict[str, Any]) -> str:
    return f"{_words(data.get('kind'))} of {data.get('amount')} {data.get('currency')}"


def _requested(data: dict[str, Any]) -> str:
    waits = data.get("needs_approval") or []
    then = f"; it waits for approval ({'; '.join(waits)})" if waits else "; it went to billing"
    return f"Requested a {_money(data)}{then}"


def _opened(data: dict[str, Any]) -> str:
    deadline = _time(data["resolution_deadline"])
    return f"Case opened, {data.get('severity')}, {_signal(data.get('signal'))}; resolution due {deadline}"


def _corrected(data: dict[str, Any]) -> str:
    moved = [
        f"{_words(c.get('name'))} {_deadline(c.get('before'))} → {_deadline(c.get('after'))}"
        for c in data.get("corrections") or []
    ]
    return f"SLA policy {data.get('to_version')} moved the deadlines: {'; '.join(moved)}"


def _deadline(clock: dict[str, Any] | None) -> str:
    return _time(clock["deadline"]) if clock else "none"


def _sla(fired: str) -> Callable[[dict[str, Any]], str]:
    return lambda d: f"The {_words(d.get('sla'))} clock {fired} (deadline {_time(d['deadline'])})"


_RESUMED: dict[str, str] = {  # why a pause ended, by case.resumed's cause
    "staff": "the pause was ended by staff",
    "budget_spent": "the reason's pause budget ran out",
    "until_reached": "the time it was paused until came",
    "customer_signal": "the customer wrote",
}


def _unknown(type_: str) -> Callable[[dict[str, Any]], str]:
    return lambda d: type_.removeprefix("case.").replace("_", " ").capitalize()


# stored type -> (its sentence, the field holding what staff wrote with it)
_SENTENCES: dict[str, tuple[Callable[[dict[str, Any]], str], str | None]] = {
    "case.opened": (_opened, "reason"),
    "case.signal_attached": (lambda d: f"Another signal arrived, {_signal(d.get('signal'))}", None),
    "case.escalated": (
        lambda d: (
            f"Severity raised from {d.get('from_severity')} to {d.get('to_severity')}"
            f" ({', '.join(d.get('reasons') or [])}); resolution now due {_time(d['resolution_deadline'])}"
        ),
        None,
    ),
    "case.reopened": (
        lambda d: (
            f"Reopened, {_signal(d['signal']) if d.get('signal') else 'by staff'};"
            f" resolution due {_time(d['resolution_deadline'])}"
        ),
        "reason",
    ),
    "case.sla_warning": (_sla("is about to run out"), None),
    "case.sla_breached": (_sla("breached"), None),
    "case.assigned": (lambda d: f"Assigned to {d.get('owner')}", None),
    "case.acknowledged": (lambda d: "Recorded the first response to the customer", None),
    "case.step_added": (lambda d: f"Planned {d.get('step_id')}: {_words(d.get('kind'))}", None),
    "case.step_recorded": (lambda d: f"Recorded {d.get('step_id')} as {d.get('outcome')}", "notes"),
    "case.resolved": (
        lambda d: f"Resolved ({_words(d.get('resolution_type'))}), root cause {d.get('root_cause')}",
        "prevention_action",
    ),
    "case.follow_up_recorded": (
        lambda d: "Followed up: the customer is " + ("satisfied" if d.get("satisfied") else "not satisfied"),
        "notes",
    ),
    "case.followup_due": (lambda d: f"The follow-up with the customer fell due ({_time(d['due_at'])})", None),
    "case.closed": (lambda d: "Closed the case", None),
    "case.incident_linked": (lambda d: f"Linked to incident {d.get('incident_id')}", None),
    "case.deadlines_corrected": (_corrected, None),
    "case.note_added": (lambda d: "Added an internal note", "note"),
    "case.summary_edited": (lambda d: "Rewrote the summary", "summary"),
    "case.compensation_requested": (_requested, "reason"),
    "case.compensation_approved": (lambda d: f"Approved the {_money(d)}: it went to billing", None),
    "case.compensation_settled": (
        lambda d: f"Billing paid request {d.get('request_id')} (reference {d.get('reference')})",
        None,
    ),
    "case.compensation_failed": (lambda d: f"Billing could not pay request {d.get('request_id')}", "reason"),
    "case.paused": (
        lambda d: f"Paused, {_words(d.get('reason'))}; it resumes by itself at {_time(d['resumes_at'])}",
        None,
    ),
    "case.resumed": (lambda d: f"Resumed: {_RESUMED.get(str(d.get('cause')), 'the pause ended')}", None),
    "case.personal_data_erased": (
        lambda d: f"Erased the customer's personal data (the customer is {d.get('pseudonym')} from now on)", None
    ),
}
