"""requirements/*.lock against pyproject.toml: every declared dependency pinned, nothing stale.

The locks are uv's output (`make lock`); `make lock-check` re-resolves them against the package index.
These checks need no network: what pyproject.toml declares is exactly what the locks say they pin
for it, at versions its ranges allow, and the image and the test virtualenv get the same versions.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def parse_lock(text: str) -> dict[str, tuple[Version, set[str], int]]:
    """name -> (pinned version, what it is needed by, number of hashes)."""
    out: dict[str, tuple[Version, set[str], int]] = {}
    current: str | None = None
    for line in text.splitlines():
        if m := PIN.match(line):
            current = canonicalize_name(m.group(1))
            out[current] = (Version(m.group(2)), set(), 0)
        elif current is not None:
            stripped = line.strip()
            version, via, hashes = out[current]
            if stripped.startswith("--hash=sha256:"):
                out[current] = (version, via, hashes + 1)
            else:
                via_text = stripped.removeprefix("#").strip().removeprefix("via").strip()
                if via_text:
                    via.add(via_text)
    return out


def direct(lock: dict[str, tuple[Version, set[str], int]]) -> set[str]:
    return {name for name, (_, via, _) in lock.items() if any("(pyproject.toml)" in v for v in via)}


def declared(*extras: str) -> list[Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]]
    return reqs


def lock_problems(text: str, reqs: list[Requirement]) -> list[str]:
    """Why a lock does not match the declared requirements (empty when it does)."""
    lock = parse_lock(text)
    problems = [f"{n} is declared but not locked" for n in {canonicalize_name(r.name) for r in reqs} - direct(lock)]
    problems += [f"{n} is locked for pyproject.toml but no longer declared"
                 for n in direct(lock) - {canonicalize_name(r.name) for r in reqs}]
    for req in reqs:
        pinned = lock.get(canonicalize_name(req.name))
        if pinned is not None and not req.specifier.contains(pinned[0], prereleases=True):
            problems.append(f"{req} but the lock pins {pinned[0]}")
    problems += [f"{n} has no hash" for n, (_, _, hashes) in lock.items() if not hashes]
    return problems


LOCKS = {
    "runtime": ((), ROOT / "requirements" / "runtime.lock"),
    "dev": (("test",), ROOT / "requirements" / "dev.lock"),
}


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_the_lock_pins_exactly_what_pyproject_declares(name: str) -> None:
    extras, path = LOCKS[name]
    assert lock_problems(path.read_text(encoding="utf-8"), declared(*extras)) == [], "run `make lock`"


def test_the_image_and_the_tests_get_the_same_versions() -> None:
    runtime = parse_lock(LOCKS["runtime"][1].read_text(encoding="utf-8"))
    dev = parse_lock(LOCKS["dev"][1].read_text(encoding="utf-8"))
    assert set(runtime) <= set(dev)
    assert {n: v for n, (v, _, _) in runtime.items()} == {n: dev[n][0] for n in runtime}


@pytest.mark.parametrize("case", ["undeclared", "unlocked", "outside-range", "no-hash"])
def test_a_stale_lock_is_caught(case: str) -> None:
    text = LOCKS["runtime"][1].read_text(encoding="utf-8")
    reqs = declared()
    if case == "undeclared":  # a dependency removed from pyproject.toml, the lock not regenerated
        reqs = [r for r in reqs if r.name != "orjson"]
    elif case == "unlocked":  # a dependency added to pyproject.toml, the lock not regenerated
        reqs = [*reqs, Requirement("stamina>=24.3")]
    elif case == "outside-range":
        reqs = [Requirement("orjson>=999") if r.name == "orjson" else r for r in reqs]
    else:
        text = re.sub(r"(orjson==\S+) \\\n(\s+--hash=\S+( \\)?\n)+", r"\1\n", text)
    assert lock_problems(text, reqs)


def test_no_declared_runtime_dependency_goes_unused() -> None:
    """Each runtime dependency is imported by the package (its import name may differ)."""
    import_names = {"pyyaml": "yaml", "prometheus-client": "prometheus_client", "faust-streaming": "faust",
                    "mode-streaming": "mode", "httpx-aiohttp": "httpx_aiohttp"}
    source = "\n".join(p.read_text(encoding="utf-8") for pkg in ("worker", "gorgias_sandbox")
                       for p in (ROOT / pkg).rglob("*.py"))
    for req in declared():
        module = import_names.get(canonicalize_name(req.name), canonicalize_name(req.name).replace("-", "_"))
        assert re.search(rf"^\s*(import|from) {re.escape(module)}\b", source, re.M), f"{req.name} is never imported"
