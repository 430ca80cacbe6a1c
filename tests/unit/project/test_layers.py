"""The layers of worker/ hold: each module imports only its own layer and those below it, no two
modules import each other, and the sandbox stays apart (the contracts are in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def test_every_import_contract_is_kept() -> None:
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 5 kept, 0 broken." in result.stdout


def test_an_import_that_runs_back_up_breaks_the_layers(tmp_path: Path) -> None:
    # the same layers, read by the linter over a copy of the package with one upward import added
    copy = tmp_path / "worker"
    subprocess.run(["cp", "-r", str(ROOT / "worker"), str(copy)], check=True)
    (copy / "core" / "upward.py").write_text("from worker.service import runtime\n")
    config = tmp_path / "pyproject.toml"
    config.write_text((ROOT / "pyproject.toml").read_text())
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(config), "--contract", "layers"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
                            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "worker.core.upward -> worker.service.runtime" in result.stdout
