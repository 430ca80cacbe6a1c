"""Ruff's complexity rule (C901) is on: a function above complexity 10 is split, or says why it reads better
whole. Each exception carries its reason on a ``# complexity:`` line just above the ``def``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NOQA = re.compile(r"#\s*noqa:[^#]*\bC901\b")


def exceptions_without_a_reason(root: Path) -> list[str]:
    found = []
    for folder in ("worker", "gorgias_sandbox", "tests", "bench"):
        for path in sorted((root / folder).rglob("*.py")):
            if path == Path(__file__).resolve():  # its own examples below
                continue
            lines = path.read_text(encoding="utf-8").splitlines()
            for n, line in enumerate(lines):
                if not NOQA.search(line):
                    continue
                above = lines[n - 1].strip() if n else ""
                reason = above.removeprefix("# complexity:").strip()
                if not above.startswith("# complexity:") or len(reason.split()) < 3:
                    found.append(f"{path.relative_to(root)}:{n + 1}")
    return found


def test_every_complexity_exception_says_why() -> None:
    assert exceptions_without_a_reason(ROOT) == []


def test_an_exception_without_a_reason_is_found(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "m.py").write_text(
        "# complexity: one branch per case of the table\ndef ok():  # noqa: C901\n    pass\n\n"
        "def bare():  # noqa: C901\n    pass\n\n# complexity: long\ndef terse():  # noqa: E501, C901\n    pass\n"
    )
    assert exceptions_without_a_reason(tmp_path) == ["worker/m.py:5", "worker/m.py:9"]
