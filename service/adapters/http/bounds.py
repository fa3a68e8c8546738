"""Every bound on what the HTTP API accepts, in one place; the OpenAPI document shows each one.

Outside a bound a request is refused with 422 naming the field, before anything is read or stored.
The amount's bounds (minor unit, maximum) are the domain's: service/domain/money.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Path, Query
from pydantic import Field

from service.domain.bounds import MAX_ID_LENGTH, NO_CONTROL_CHARACTERS

# Ids (case, step and request ids, customer ids, root-cause tags, Idempotency-Key): the domain's one bound.

MAX_OWNER_LENGTH = 200  # the owner a case is assigned to
MAX_TEXT_LENGTH = 4000  # staff free text: notes, reasons, prevention actions
MAX_CURSOR_LENGTH = 1000  # the paging cursor the API issued
MAX_BODY_BYTES = 64 * 1024  # a whole request body: the largest valid one is far smaller

# Free text: tab, line feed and carriage return are fine, every other control character is refused.
TEXT_CHARACTERS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"


def id_field(description: str, **extra: Any) -> Any:
    return Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description=description,
        **extra,
    )


def text_field(description: str, required: bool = True, **extra: Any) -> Any:
    return Field(
        min_length=1 if required else 0,
        max_length=MAX_TEXT_LENGTH,
        pattern=TEXT_CHARACTERS,
        description=description,
        **extra,
    )


Owner = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_OWNER_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description="Who owns the case from now on.",
    ),
]

CaseId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_CONTROL_CHARACTERS, description="The case id."),
]
StepId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description="The step's id on its case: step-1, step-2, ...",
    ),
]
RequestId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description="The compensation's `request_id`, as the case shows it.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description="Scoped to the actor and the case (or, when opening, the customer): repeat it to get "
        "the first answer back without a second change. The same key on another case is another command.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description='The ETag of the case the command was decided on, as GET /v1/cases/{case_id} gives it: "7"'
        " for version 7. When the case has moved on since, the command is refused with 412 and nothing"
        " changes: reload and decide again. Without it the command applies to the latest version.",
        examples=['"7"'],
    ),
]


ETAG: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "ETag": {
                "description": 'The case\'s version as an entity tag, e.g. "7": send it back as If-Match.',
                "schema": {"type": "string"},
            }
        }
    }
}


def etag_of(version: int) -> str:
    """The case's entity tag: its version, quoted (a strong ETag)."""
    return f'"{version}"'


def version_of(if_match: str | None) -> int | None:
    """The case version an If-Match names; None for no header or `*` (any version); ValueError otherwise."""
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip()
    digits = tag[1:-1]
    if len(tag) < 3 or tag[0] != '"' or tag[-1] != '"' or not digits.isdigit() or len(digits) > 18:
        raise ValueError('If-Match must be one ETag of the case as GET gives it, e.g. "7", or *')
    return int(digits)


def query_id(description: str) -> Any:
    return Query(
        min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_CONTROL_CHARACTERS, description=description
    )
