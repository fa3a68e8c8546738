"""The console's clocks partial: every clock of the case, each with the line that explains its deadline."""

from __future__ import annotations

from datetime import timedelta

from service.adapters.http.console.pages import TEMPLATES
from service.adapters.http.console.views import clocks, time_left
from service.domain.severity import Severity
from tests.unit.test_sla_clocks import FRIDAY_4PM, SLA, opened


def test_the_partial_shows_every_clock_with_its_explanation() -> None:
    _, state = opened(Severity.MAJOR)
    now = FRIDAY_4PM + timedelta(minutes=10)
    shown = clocks(state, SLA, now)
    html = TEMPLATES.get_template("_clocks.html").render(clocks=shown, now=now, time_left=time_left)
    assert [c.name for c in shown] == ["First response", "Resolution", "Regulatory final response"]
    for clock in shown:
        assert f'<th scope="row">{clock.name}</th>' in html
        assert clock.explanation.replace("'", "&#39;") in html
    assert "24h of open time in calendar uk-office (Europe/London, Mon–Fri 09:00-17:30)" in html
