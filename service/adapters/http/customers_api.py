"""`POST /v1/customers/{customer_id}/erase`: an owner erases a customer's personal data (their right to erasure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from service.adapters.http.auth import Actor, AuthenticatedRoute, Roles
from service.adapters.http.errors import COMMON, FORBIDDEN, ApiError, refusal, status_of
from service.app.erasure import ErasureStore, NothingHeld, erase_customer
from service.domain.bounds import MAX_ID_LENGTH, NO_CONTROL_CHARACTERS
from service.domain.errors import DomainError
from service.domain.workflow import Actor as DomainActor

CustomerId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_CONTROL_CHARACTERS, description="The customer id."),
]


class CustomerErased(BaseModel):
    pseudonym: str = Field(description="What the customer's cases carry in place of their customer id from now on.")
    case_ids: list[str] = Field(description="The customer's cases: their counts stay, their texts read [erased].")
    erased_at: datetime = Field(description="When the data was erased.")
    erased_by: str = Field(description="The owner who erased it.")
    repeated: bool = Field(
        description="True when the customer was erased before and nothing of theirs was stored since: nothing"
        " changed now."
    )


def customers_router(store_of: Callable[[], ErasureStore]) -> APIRouter:
    router = APIRouter(
        prefix="/v1/customers",
        route_class=AuthenticatedRoute,
        responses={
            **COMMON,
            **FORBIDDEN,
            404: refusal("The service holds nothing about this customer, and never erased them."),
            409: refusal("The customer is still being served: an open case, or compensation not yet settled."),
        },
        dependencies=[Depends(Roles({"owner"}, "erase a customer's personal data"))],
    )

    @router.post("/{customer_id}/erase", response_model=CustomerErased)
    async def erase(customer_id: CustomerId, actor: Actor) -> CustomerErased:
        """Erase the customer's personal data: their id is replaced by a pseudonym and every personal text by
        `[erased]` in everything the service stores (events, cases, the signal log, remembered answers), their
        key is destroyed, and `recovery.customer.erased` is published once for other services to erase theirs.
        The counts (severity, category, root cause, SLA outcome, compensation) stay for retention reports.
        Refused (409, with why) while a case of theirs is open or a compensation not yet settled or failed.
        Repeating it answers as the first time."""
        try:
            erasure = await erase_customer(customer_id, DomainActor(actor.actor, actor.role), store_of())
        except NothingHeld as e:
            raise ApiError(404, "not_found", str(e)) from e
        except DomainError as e:
            raise ApiError(status_of(e), e.code, e.detail, e.field) from e
        return CustomerErased(
            pseudonym=erasure.pseudonym,
            case_ids=list(erasure.case_ids),
            erased_at=erasure.erased_at,
            erased_by=erasure.erased_by,
            repeated=erasure.repeated,
        )

    return router
