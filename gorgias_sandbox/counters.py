"""Request counters for ``GET /__admin/counters``: per ``METHOD route-template`` and outcome."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Counters:
    """Counts of answered (by status), dropped and hung requests, and of 429s."""

    def __init__(self) -> None:
        self.requests: dict[str, Counter[str]] = {}
        self.total = 0
        self.rate_limited = 0

    def record(self, route: str, outcome: int | str) -> None:
        """One request to ``route`` (``"POST /api/tickets"``) ended with ``outcome`` (a status,
        ``"dropped"`` or ``"hung"``)."""
        counter = self.requests.get(route)
        if counter is None:
            counter = self.requests[route] = Counter()
        counter[str(outcome)] += 1
        self.total += 1
        if outcome == 429:
            self.rate_limited += 1

    def reset(self) -> None:
        """Start counting from zero."""
        self.requests.clear()
        self.total = 0
        self.rate_limited = 0

    def snapshot(self, faults: dict[str, int]) -> dict[str, Any]:
        """Plain-JSON view, with the injected faults by kind."""
        return {
            "total": self.total,
            "rate_limited": self.rate_limited,
            "requests": {route: dict(sorted(c.items())) for route, c in sorted(self.requests.items())},
            "faults": dict(sorted(faults.items())),
        }
