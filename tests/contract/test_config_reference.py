"""The configuration reference in docs/operators.md is generated from Settings and cannot drift."""

from __future__ import annotations

from service.config import Settings
from tools.config_reference import DOC, rendered, table


def test_the_operators_page_holds_the_table_generated_from_settings() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert rendered(doc) == doc, "run: make docs"


def test_every_setting_has_a_row_with_a_meaning() -> None:
    rows = table().splitlines()[2:]
    assert len(rows) == len(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        assert field.description, f"RECOVERY_{name.upper()} has no description"
        assert any(row.startswith(f"| `RECOVERY_{name.upper()}` |") for row in rows)
