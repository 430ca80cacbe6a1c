"""The README's table of OAuth scopes per template (OAuth apps, step 2), generated from
:func:`worker.core.templates.scopes.template_scopes`, so the README says what the worker checks at start.

``gorgias-worker schemas --write`` rewrites it between its markers; ``gorgias-worker schemas`` (and the unit
tests) report a table that differs.
"""

from __future__ import annotations

from worker.core.templates.catalog import list_templates
from worker.core.templates.scopes import ACCOUNT_READ, JOBS, template_scopes
from worker.tools.readme_sections import GeneratedSection

BEGIN = "<!-- scopes table: generated from worker/core/templates/scopes.py by `gorgias-worker schemas --write` -->"
END = "<!-- end of the scopes table -->"
HEADER = "| templates | scopes |\n| --- | --- |\n"


_RANK = ("tickets", "customers", "satisfaction_survey", "tags", "custom_fields", "jobs")


def _order(scope: str) -> tuple[int, str, bool]:
    """The written resource first, then what it reads besides; each resource's write before its read."""
    resource, _, access = scope.partition(":")
    rank = _RANK.index(resource) if resource in _RANK else len(_RANK)
    return rank, resource, access != "write"


def rows() -> list[tuple[list[str], list[str]]]:
    """(templates, scopes) for each set of scopes some templates need, in the catalog's order."""
    groups: dict[frozenset[str], list[str]] = {}
    for template in list_templates():
        groups.setdefault(template_scopes(template), []).append(template.name)
    return [(names, sorted(scopes, key=_order)) for scopes, names in groups.items()]


def table() -> str:
    lines = [f"| {', '.join(f'`{n}`' for n in names)} | {', '.join(f'`{s}`' for s in scopes)} |"
             for names, scopes in rows()]
    lines.append(f"| any destination with `delivery.coalesce: jobs` | also {', '.join(f'`{s}`' for s in JOBS[::-1])} |")
    lines.append("| a destination with `method` and `url` | its route's: `<resource>:read` for GET, "
                 "`<resource>:write` otherwise |")
    lines.append(f"| every destination | also `{ACCOUNT_READ}` |")
    return HEADER + "\n".join(lines) + "\n"


SECTION = GeneratedSection("scopes table (OAuth apps)", BEGIN, END, table)
