"""The console's actions on a case: each form makes the API's command, from the same table (CASE_COMMANDS).

A form's fields go through the same body models as the API's JSON (the same bounds, the same refusals), then
into the same domain command, sent with the case version the form was filled in on (If-Match).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from service.adapters.http.case_commands import CASE_COMMANDS, CaseCommand
from service.app.commands import Submission
from service.domain.errors import InvalidValue
from service.domain.workflow import Actor

Body = TypeVar("Body", bound=BaseModel)
LOCAL_TIMES = frozenset({"until"})
"""The fields the page sends from a datetime-local input, which has no offset: read as UTC (the page's zone)."""
DONE = {entry.done_key: entry.done for entry in CASE_COMMANDS}
"""The console's `?done=` values, each with what the page then says."""


@dataclass(frozen=True)
class Form:
    """One submitted action form: its case, its fields, who sent it and the version it was decided on."""

    case_id: str
    fields: Mapping[str, str]
    actor: Actor
    version: int

    def body(self, model: type[Body]) -> Body:
        """The fields the API's body model knows, an empty one as not given; a refusal names the field."""
        known = {k: _utc(k, v) for k, v in self.fields.items() if k in model.model_fields and v != ""}
        try:
            return model.model_validate(known)
        except ValidationError as e:
            first = e.errors()[0]
            name = ".".join(map(str, first["loc"])) or "form"
            raise InvalidValue(f"{name.replace('_', ' ')}: {first['msg']}", name) from None

    def submission(self, entry: CaseCommand, ids: Mapping[str, str]) -> Submission:
        """The entry's command made from this form, as the API would send it."""
        command = entry.make(None if entry.body is None else self.body(entry.body), ids)
        return Submission(command, self.actor, self.case_id, expected_version=self.version)


def _utc(name: str, text: str) -> str:
    if name not in LOCAL_TIMES:
        return text
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"{name}: {text[:40]!r} is not a date and time", name) from None
    return text if at.tzinfo is not None else at.replace(tzinfo=UTC).isoformat()
