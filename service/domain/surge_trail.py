"""A scope's recent sightings as a replay walks them in time order (`incidents.replay`, the backtest).

The trail keeps what the baseline of a window ending at the latest sighting can see, and no more: the window
(end - w, end] and the n windows of the baseline period before it, the buckets (end - (j + 1) w, end - j w]
of `incidents.baseline_of`, j = 1..n. It counts the window's distinct customers as it goes, and keeps a
lower bound of the baseline's pairs (distinct customers per bucket, summed), so that a replay counts the
baseline exactly only where the window could reach its multiple: over weeks of a busy scope, an exact count
at every sighting would cost the whole period each time.

The bound: fixed grid points, GRID to a window, and for each point g the distinct customers within the
GRID - 1 steps up to it, (g - (GRID - 1) steps, g]. For bucket j, take the last point g at or before its
end: the step after g lies past the end, so those steps lie wholly in the bucket, which has their customers
at least. The points for j = 1..n are a window apart, one point in GRID of the grid, so their sum is kept per
residue as points are passed. The bound misses only the customers seen in a bucket's last step alone: about
1/GRID of the pairs where traffic is steady.
"""

from __future__ import annotations

from collections import Counter, deque
from datetime import datetime, timedelta

GRID = 8
"""Grid points per window: the bound is within about 1/GRID of the pairs, for GRID sums kept per scope."""

_US = timedelta(microseconds=1)


class SurgeTrail:
    """One scope's sightings under one rule, as far back as its baseline can see, counted as they come."""

    __slots__ = (
        "seen",
        "_w",
        "_windows",
        "_origin",
        "_recent",
        "_in_window",
        "_steps",
        "_in_steps",
        "_next_point",
        "_sums",
    )

    def __init__(self, window: timedelta, baseline_windows: int) -> None:
        self.seen: deque[tuple[datetime, str]] = deque()  # (time, customer), oldest first
        self._w = window // _US  # times are integer microseconds after the first sighting
        self._windows = baseline_windows
        self._origin: datetime | None = None
        self._recent: deque[tuple[int, str]] = deque()  # the window's sightings
        self._in_window: Counter[str] = Counter()
        self._steps: deque[tuple[int, str]] = deque()  # the sightings within GRID - 1 steps of the next point
        self._in_steps: Counter[str] = Counter()
        self._next_point = 0  # the first grid point whose count is not taken yet
        self._sums = [_Residue() for _ in range(GRID)]

    def add(self, at: datetime, customer: str) -> None:
        """The next sighting (none earlier than the last): it ends the window."""
        if self._origin is None:
            self._origin = at
        t = (at - self._origin) // _US
        self._pass_points_before(t)
        self.seen.append((at, customer))
        reach = (self._windows + 1) * self._w  # baseline_of sees nothing this old
        while (at - self.seen[0][0]) // _US >= reach:
            self.seen.popleft()
        _slide(self._recent, self._in_window, t - self._w)
        _enter(self._recent, self._in_window, t, customer)
        _enter(self._steps, self._in_steps, t, customer)
        oldest = self._last_point_at(t - self._w) - (self._windows - 1) * GRID
        for residue in self._sums:
            residue.forget_before(oldest)

    def window_customers(self) -> int:
        """The distinct customers in the window ending at the latest sighting."""
        return len(self._in_window)

    def pairs_at_least(self) -> int:
        """A lower bound of the baseline's pairs for the window ending at the latest sighting (0: none)."""
        if not self._recent:
            return 0
        first = self._last_point_at(self._recent[-1][0] - self._w)  # the point for bucket 1
        return self._sums[first % GRID].up_to(first)

    def _pass_points_before(self, t: int) -> None:
        """Take the count of each grid point before `t`: no sighting still to come can fall in its steps."""
        while self._point(self._next_point) < t:
            i = self._next_point
            _slide(self._steps, self._in_steps, self._point(i - GRID + 1))
            if not self._steps:  # nothing until t: every point before it counts none
                self._next_point = max(i + 1, self._last_point_at(t - 1) + 1)
                continue
            self._sums[i % GRID].add(i, len(self._in_steps))
            self._next_point = i + 1

    def _point(self, i: int) -> int:
        return i * self._w // GRID  # points GRID apart are exactly a window apart

    def _last_point_at(self, t: int) -> int:
        """The last grid point at or before t."""
        return ((t + 1) * GRID - 1) // self._w


class _Residue:
    """The counts of one grid point in GRID, a window apart, with their sum."""

    __slots__ = ("_counts", "_sum")

    def __init__(self) -> None:
        self._counts: deque[tuple[int, int]] = deque()
        self._sum = 0

    def add(self, point: int, customers: int) -> None:
        self._counts.append((point, customers))
        self._sum += customers

    def forget_before(self, point: int) -> None:
        while self._counts and self._counts[0][0] < point:
            self._sum -= self._counts.popleft()[1]

    def up_to(self, point: int) -> int:
        """The sum of the counts at or before `point` (one later may be kept: a window on, before the end)."""
        total, counts = self._sum, self._counts
        for k in (1, 2):
            if len(counts) >= k and counts[-k][0] > point:
                total -= counts[-k][1]
        return total


def _slide(trail: deque[tuple[int, str]], counts: Counter[str], older: int) -> None:
    """Drop the sightings at or before `older`, keeping the customers' counts."""
    while trail and trail[0][0] <= older:
        _, gone = trail.popleft()
        counts[gone] -= 1
        if not counts[gone]:
            del counts[gone]


def _enter(trail: deque[tuple[int, str]], counts: Counter[str], t: int, customer: str) -> None:
    trail.append((t, customer))
    counts[customer] += 1
