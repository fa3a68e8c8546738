"""The intake's memory of parsed snapshots answers only for the very text it parsed or wrote."""

from __future__ import annotations

from dataclasses import replace

from service.adapters.postgres.case_writes import case_rows
from service.adapters.postgres.intake_store import ParsedSnapshots
from service.domain.case import CASE_STATE, CaseState
from service.domain.registry import SNAPSHOT
from tests.cases import open_case


def text(state: CaseState) -> str:
    return CASE_STATE.dump_json(state).decode()


def test_the_text_it_wrote_is_answered_without_parsing_and_any_other_text_is_parsed() -> None:
    memory = ParsedSnapshots(10)
    written = open_case("a")
    memory.written([written], case_rows([written]))
    assert memory.read("a", SNAPSHOT.version, text(written)) is written
    changed = replace(written, owner="ana", version=2)
    read = memory.read("a", SNAPSHOT.version, text(changed))
    assert read == changed and read is not written
    assert memory.read("a", SNAPSHOT.version, text(changed)) is read  # now that text is the one it knows


def test_it_keeps_the_most_recently_used_cases_up_to_its_size() -> None:
    memory = ParsedSnapshots(2)
    states = {name: open_case(name) for name in "abc"}
    for name in "ab":
        memory.remember(name, text(states[name]), states[name])
    assert memory.read("a", SNAPSHOT.version, text(states["a"])) is states["a"]  # a is now the most recent
    memory.remember("c", text(states["c"]), states["c"])  # b goes
    assert memory.read("a", SNAPSHOT.version, text(states["a"])) is states["a"]
    assert memory.read("b", SNAPSHOT.version, text(states["b"])) is not states["b"]
