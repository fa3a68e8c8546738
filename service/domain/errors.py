"""Errors the domain raises; adapters translate them (HTTP 4xx, dead-letter)."""


class DomainError(Exception):
    """A command or input the domain refuses; the message names the reason."""


class ConcurrencyConflict(Exception):
    """Somebody appended to the same stream first; reload and decide again."""
