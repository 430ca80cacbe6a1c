"""The test suite is a map of the product: `tests/unit/` mirrors the layers of `worker/`, helpers shared by
tests live in `tests/support/` (no test module imports another), and a test that needs Kafka says so
with the `integration` marker (`make unit` runs without a broker)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TESTS = ROOT / "tests"
LAYERS = {"core", "host", "gorgias", "kafka", "service", "tools"}
BESIDE_THE_LAYERS = {"sandbox": "gorgias_sandbox/", "project": "the repository as a whole"}

pytest_plugins = ["pytester"]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every ``import``/``from ... import`` in ``path``."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            found.append((node.lineno, module))
    return found


def test_no_test_module_imports_another_test_module_only_tests_support() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in imported_modules(path)
        if (module == "tests" or module.startswith("tests.")) and not module.startswith("tests.support")
    ]
    assert not wrong, "shared helpers belong in tests/support/:\n" + "\n".join(wrong)


def test_unit_test_folders_are_the_layers_of_worker() -> None:
    folders = {p.name for p in (TESTS / "unit").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= LAYERS | set(BESIDE_THE_LAYERS), sorted(folders - LAYERS - set(BESIDE_THE_LAYERS))
    core = {p.name for p in (ROOT / "worker" / "core").iterdir() if (p / "__init__.py").exists()}
    tested_core = {p.name for p in (TESTS / "unit" / "core").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert tested_core <= core, f"tests/unit/core/ folders that are not packages of worker/core: {tested_core - core}"
    loose = sorted(p.name for p in (TESTS / "unit").glob("test_*.py"))
    assert not loose, f"put these in the folder of the layer they test: {loose}"


def test_every_test_folder_is_a_package_with_a_purpose() -> None:
    for folder in sorted(p for p in (TESTS / "unit").rglob("*") if p.is_dir() and p.name not in ("__pycache__",
                                                                                                "fixtures")):
        init = folder / "__init__.py"
        assert init.exists() and ast.get_docstring(ast.parse(init.read_text())), f"{init}: say what it tests"


def test_a_test_needing_kafka_without_the_marker_fails_before_its_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n"
                     "markers =\n    integration: needs Kafka\n")
    pytester.makeconftest(
        """
        from pathlib import Path
        import pytest
        from tests.conftest import pytest_runtest_setup  # the rule under test

        @pytest.fixture
        def kafka_bootstrap(request):
            with open(Path(__file__).parent / "set-up.txt", "a") as log:
                log.write(request.node.name + "\\n")
            return "127.0.0.1:1"
        """
    )
    (pytester.path / "tests" / "unit").mkdir(parents=True)
    (pytester.path / "tests" / "integration").mkdir()
    (pytester.path / "tests" / "unit" / "test_kafka.py").write_text(
        "import pytest\n\n"
        "def test_unmarked(kafka_bootstrap):\n    pass\n\n"
        "@pytest.mark.integration\ndef test_marked(kafka_bootstrap):\n    pass\n\n"
        "def test_plain():\n    pass\n"
    )
    (pytester.path / "tests" / "integration" / "test_flow.py").write_text("def test_in_the_folder():\n    pass\n")

    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly")

    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*test_unmarked uses kafka_bootstrap but has no `integration` marker*"])
    result.stdout.fnmatch_lines(["*test_in_the_folder is in tests/integration/ but has no `integration` marker*"])
    assert (pytester.path / "set-up.txt").read_text().split() == ["test_marked"]
