"""A case's summary: the first sentence of the customer's words, bounded; staff rewrite it within their role."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.case import CaseStatus, evolve
from service.domain.errors import InvalidValue, MissingField, NotAllowed
from service.domain.events import SummaryEdited
from service.domain.summary import MAX_SUMMARY_LENGTH, decide_edit_summary, summary_of
from service.domain.workflow import Actor
from tests.cases import open_case as opened_case

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@given(st.text(max_size=2000))
def test_a_summary_is_bounded_on_one_line_and_taken_from_the_start_of_the_words(text: str) -> None:
    summary = summary_of(text)
    if summary is None:
        assert not text.strip()  # no words at all
        return
    assert 0 < len(summary) <= MAX_SUMMARY_LENGTH
    assert "\n" not in summary and "\r" not in summary and summary == summary.strip()
    kept = summary.removesuffix("…")
    assert " ".join(text.split()).startswith(kept) or kept in " ".join(text.split())


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=".!?…\r\n"), max_size=200))
def test_a_short_sentence_is_its_own_summary_with_white_space_collapsed(words: str) -> None:
    assert summary_of(words + ". And more after it.") == " ".join((words + ".").split())


def test_the_first_sentence_ends_at_its_stop_or_the_line_and_a_long_one_is_cut_at_a_word() -> None:
    assert summary_of("Water came through the ceiling. Nobody called.") == "Water came through the ceiling."
    assert summary_of("No heating\nsince Monday") == "No heating"
    assert summary_of("  ") is None and summary_of(None) is None
    long = summary_of("word " * 100)
    assert long is not None and long.endswith("word…") and len(long) <= MAX_SUMMARY_LENGTH


def test_staff_rewrite_the_summary_and_the_case_keeps_it() -> None:
    state = opened_case()
    events = decide_edit_summary(state, "  Leak  after the repair ", Actor("ana", "agent"), NOW)
    assert [type(e) for e in events] == [SummaryEdited]
    assert evolve(state, events[0]).summary == "Leak after the repair"
    assert decide_edit_summary(evolve(state, events[0]), "Leak after the repair", Actor("ana", "agent"), NOW) == []


def test_a_blank_or_too_long_summary_is_refused_naming_the_field() -> None:
    state = opened_case()
    with pytest.raises(MissingField) as blank:
        decide_edit_summary(state, " \t", Actor("ana", "agent"), NOW)
    with pytest.raises(InvalidValue) as long:
        decide_edit_summary(state, "x" * (MAX_SUMMARY_LENGTH + 1), Actor("ana", "agent"), NOW)
    assert blank.value.field == "summary" and long.value.field == "summary"


def test_only_a_manager_or_owner_rewrites_the_summary_of_a_resolved_case() -> None:
    resolved = replace(opened_case(), status=CaseStatus.RESOLVED)
    with pytest.raises(NotAllowed):
        decide_edit_summary(resolved, "Rewritten", Actor("ana", "agent"), NOW)
    assert decide_edit_summary(resolved, "Rewritten", Actor("mia", "manager"), NOW)
