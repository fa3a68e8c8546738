"""The trends page: root-cause counts over a chosen window as a bar chart drawn on the server (SVG), with a table.

The counts are the same read as GET /v1/trends/root-causes; a tag at or above the threshold is a trend, marked
in the chart by colour and by words, never by colour alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.adapters.http.console.pages import Console, go, render, signed_in
from service.domain.trends import TrendPolicy

MAX_WINDOW_DAYS = 3650  # the API's bound
WIDTH, LABELS, ROW, GAP = 720, 200, 28, 8  # the chart's geometry, in SVG user units
_BAR_SPACE = WIDTH - LABELS - 110  # room on the right for "12 · trend"


@dataclass(frozen=True)
class Bar:
    tag: str
    count: int
    trend: bool
    y: int
    width: int


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    threshold: int
    threshold_x: int  # where the threshold line stands
    height: int


def chart(counts: list[tuple[str, int]], policy: TrendPolicy) -> Chart:
    """One bar per tag, most first, on a scale that always shows the threshold."""
    scale = _BAR_SPACE / max([policy.threshold, *(n for _, n in counts)])
    bars = [
        Bar(tag, n, policy.is_trend(n), GAP + i * (ROW + GAP), round(n * scale))
        for i, (tag, n) in enumerate(counts)
    ]
    height = GAP + max(len(bars), 1) * (ROW + GAP) + 20  # room for the threshold's caption
    return Chart(bars, policy.threshold, LABELS + round(policy.threshold * scale), height)


def window_of(raw: str, default: int) -> tuple[int, str | None]:
    """The window asked for in whole days, or the default with the reason the value was refused."""
    if not raw.strip():
        return default, None
    if raw.strip().isascii() and raw.strip().isdecimal() and 1 <= int(raw) <= MAX_WINDOW_DAYS:
        return int(raw), None
    return (
        default,
        f"The window must be a whole number of days from 1 to {MAX_WINDOW_DAYS}: showing {default}.",
    )


def trends_routes(router: APIRouter, console: Console) -> None:
    @router.get("/trends")
    async def trends(request: Request, window_days: str = "") -> Response:
        who = await signed_in(request, console.sessions)
        if who is None:
            return go("/console/sign-in")
        session, actor = who
        days, error = window_of(window_days[:20], console.trends.window.days)
        counts = await console.reads_of().root_causes(days)
        return render(
            request,
            "trends.html",
            400 if error else 200,
            csrf=session.csrf,
            actor=actor,
            days=days,
            max_days=MAX_WINDOW_DAYS,
            error=error,
            chart=chart(counts, console.trends),
            labels=LABELS,
            width=WIDTH,
            row=ROW,
        )
