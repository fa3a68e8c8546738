"""Errors the domain raises; adapters translate them (HTTP 4xx, dead-letter)."""


class DomainError(Exception):
    """A command or input the domain refuses; the message names the reason."""

    code = "refused"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class MissingField(DomainError):
    code = "missing_field"


class InvalidValue(DomainError):
    code = "invalid_value"


class NotAllowed(DomainError):
    """The actor's role may not do this."""

    code = "not_allowed"


class WrongState(DomainError):
    """The case is not in a state where this command makes sense."""

    code = "wrong_state"


class StaleVersion(WrongState):
    """The command was decided on an older version of the case than the stored one (If-Match)."""

    code = "stale_version"


class ConcurrencyConflict(Exception):
    """Somebody appended to the same stream first; reload and decide again."""
