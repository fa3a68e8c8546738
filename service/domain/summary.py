"""A case's summary: what went wrong, in one line staff can repeat back to the customer."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from service.domain.errors import InvalidValue, MissingField, NotAllowed
from service.domain.events import CaseEvent, SummaryEdited

if TYPE_CHECKING:  # case.py takes its opening summary from here
    from service.domain.case import CaseState
    from service.domain.workflow import Actor

MAX_SUMMARY_LENGTH = 280
"""Characters at most, whether taken from the customer's words or written by staff."""

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s|[\r\n]")
_SPACE = re.compile(r"\s+")
_ELLIPSIS = "…"


def summary_of(text: str | None) -> str | None:
    """The first sentence of the customer's words, its white space collapsed, at most MAX_SUMMARY_LENGTH
    characters: a longer one is cut at the last word that fits and ends with an ellipsis. None for no words."""
    if text is None:
        return None
    first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    sentence = _SPACE.sub(" ", first).strip()
    if not sentence:
        return None
    if len(sentence) <= MAX_SUMMARY_LENGTH:
        return sentence
    room = sentence[: MAX_SUMMARY_LENGTH - len(_ELLIPSIS) + 1]
    cut = room.rfind(" ")
    kept = room[:cut] if cut > 0 else room[:-1]  # one word longer than the bound is cut inside it
    return kept.rstrip(" ,;:-") + _ELLIPSIS


SUMMARY_AFTER_RESOLUTION = frozenset({"manager", "owner"})
"""Who may still rewrite the summary of a resolved or closed case: it is then the record auditors read."""


def may_edit_summary(status: str, role: str) -> bool:
    """Any staff may rewrite the summary of an open case; of a resolved or closed one, a manager or owner."""
    return status == "open" or role in SUMMARY_AFTER_RESOLUTION


def decide_edit_summary(state: CaseState, summary: str, actor: Actor, now: datetime) -> list[CaseEvent]:
    """Staff rewrite a case's summary: any of them while the case is open, a manager or owner once it is resolved
    or closed; a blank or too long one is refused, the same one is no change."""
    if not may_edit_summary(state.status, actor.role):
        raise NotAllowed(
            f"role {actor.role} may not edit the summary of a {state.status} case (manager or owner may)"
        )
    text = _SPACE.sub(" ", summary).strip()
    if not text:
        raise MissingField("summary is required", "summary")
    if len(text) > MAX_SUMMARY_LENGTH:
        raise InvalidValue(f"summary is longer than {MAX_SUMMARY_LENGTH} characters", "summary")
    if text == state.summary:
        return []
    return [SummaryEdited(case_id=state.case_id, at=now, actor=actor.name, summary=text)]
