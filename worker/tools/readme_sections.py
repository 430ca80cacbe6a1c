"""Sections of the README generated from the code: each written between its two marker comments by
``gorgias-worker schemas --write``, and reported by ``gorgias-worker schemas`` (and the unit tests) when the
README's copy differs from what the code says."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class GeneratedSection:
    """What stands between ``begin`` and ``end`` in the README is ``render()``; ``name`` says which."""

    name: str
    begin: str
    end: str
    render: Callable[[], str]

    def within(self, readme: str) -> str:
        """``readme`` with the generated text between its markers (which must be there)."""
        start, end = readme.index(self.begin) + len(self.begin), readme.index(self.end)
        return readme[:start] + "\n" + self.render() + readme[end:]

    def write(self, path: Path = README) -> None:
        path.write_text(self.within(path.read_text(encoding="utf-8")), encoding="utf-8")

    def drifted(self, path: Path = README) -> bool:
        """Whether the README's copy differs from ``render()`` (or its markers are missing)."""
        text = path.read_text(encoding="utf-8")
        return self.begin not in text or self.end not in text or self.within(text) != text
