"""The README's scopes table (OAuth apps, step 2) is generated from the scopes the worker checks at start,
so the two agree."""

from __future__ import annotations

from pathlib import Path

from worker.core.templates.catalog import list_templates
from worker.tools import scopes_table
from worker.tools.scopes_table import BEGIN, END, rows


def test_the_readme_table_is_the_one_the_worker_checks() -> None:
    assert not scopes_table.SECTION.drifted(), "run `gorgias-worker schemas --write` and commit README.md"


def test_every_template_is_in_one_row() -> None:
    named = [name for names, _ in rows() for name in names]
    assert sorted(named) == sorted(t.name for t in list_templates())
    first = rows()[0]
    assert first == (["create_ticket", "update_ticket", "add_ticket_tags", "set_ticket_tags"],
                     ["tickets:write", "tickets:read", "tags:write", "tags:read"])


def test_an_edited_scope_is_found_and_rewritten(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n")
    scopes_table.SECTION.write(readme)
    edited = readme.read_text().replace("`tickets:write`, `tickets:read`", "`tickets:write`", 1)
    assert edited != readme.read_text()
    readme.write_text(edited)
    assert scopes_table.SECTION.drifted(readme)
