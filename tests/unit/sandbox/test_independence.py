"""The sandbox is an oracle for the worker's client: it must not borrow anything from the worker."""

from __future__ import annotations

import ast
from pathlib import Path

import gorgias_sandbox

PACKAGE = Path(gorgias_sandbox.__file__).parent


def imported_modules(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_package_has_modules_to_check() -> None:
    assert len(list(PACKAGE.glob("*.py"))) > 10


def test_no_sandbox_module_imports_the_worker() -> None:
    offenders = {
        f"{source.name}: {name}"
        for source in PACKAGE.rglob("*.py")
        for name in imported_modules(source)
        if name == "worker" or name.startswith("worker.")
    }
    assert not offenders, f"gorgias_sandbox must not import worker: {sorted(offenders)}"


def test_the_checker_sees_a_worker_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom worker.core.records.record import Record\n")
    assert "worker.core.records.record" in imported_modules(sample)
