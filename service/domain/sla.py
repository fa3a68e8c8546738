"""SLA windows and deadline arithmetic, on UTC instants only."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from service.domain.severity import Severity
from service.domain.signals import Channel

CLOCK_FUTURE_TIME = "clock:future_time"
CLOCK_TOO_OLD = "clock:too_old"

DEFAULT_RESOLUTION = {
    Severity.MINOR: timedelta(hours=72),
    Severity.MODERATE: timedelta(hours=48),
    Severity.MAJOR: timedelta(hours=24),
    Severity.CRITICAL: timedelta(hours=4),
}
DEFAULT_FIRST_RESPONSE = {
    Channel.SOCIAL: timedelta(minutes=15),
    Channel.CHAT: timedelta(hours=1),
    Channel.PHONE: timedelta(hours=1),
    Channel.EMAIL: timedelta(hours=4),
    Channel.WEB: timedelta(hours=4),
    Channel.IN_PERSON: timedelta(hours=4),
}


class SlaPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    resolution: dict[Severity, timedelta] = Field(default_factory=lambda: dict(DEFAULT_RESOLUTION))
    first_response: dict[Channel, timedelta] = Field(default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE))
    default_channel: Channel = Channel.EMAIL
    warning_fraction: float = Field(default=0.75, gt=0, lt=1)
    reopen_window: timedelta = timedelta(days=14)
    followup_after: timedelta = timedelta(hours=48)
    # Clocks start at the signal's own time unless it is this far ahead of its arrival (a wrong clock
    # upstream) or older than the maximum age (a replay or backfill, not a live failure): then at arrival.
    clock_skew: timedelta = timedelta(minutes=5)
    max_signal_age: timedelta = timedelta(days=30)

    def clock_rule(self, occurred_at: datetime, received_at: datetime) -> str | None:
        """The reason a signal's time is not trusted to start clocks, or None when it is."""
        ahead = occurred_at - received_at
        if ahead > self.clock_skew:
            return CLOCK_FUTURE_TIME
        if -ahead > self.max_signal_age:
            return CLOCK_TOO_OLD
        return None

    def clock_start(self, occurred_at: datetime, received_at: datetime) -> datetime:
        """Clocks start at the signal's time, or at its arrival when a clock rule distrusts that time."""
        return occurred_at if self.clock_rule(occurred_at, received_at) is None else received_at

    def resolution_deadline(self, severity: Severity, start: datetime) -> datetime:
        """The resolution clock runs from the failure's time for the severity's window."""
        return start + self.resolution[severity]

    def first_response_deadline(self, channel: Channel | None, start: datetime) -> datetime:
        """The acknowledge target depends on the channel the customer used."""
        return start + self.first_response[channel or self.default_channel]

    def warning_at(self, start: datetime, deadline: datetime) -> datetime:
        """A pre-breach warning fires at the configured fraction of the window."""
        return start + (deadline - start) * self.warning_fraction


def tightened(current: datetime, candidate: datetime) -> datetime:
    """A deadline is never extended: the earlier of the two wins."""
    return min(current, candidate)
