"""Route table of the ``/api`` endpoints: templates like ``/api/tickets/{ticket_id}/messages/{id}``.

Every ``{...}`` segment is an integer id (non-integer → no match → 404); a trailing slash is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gorgias_sandbox.auth import Principal
from gorgias_sandbox.job_runner import JobQueue
from gorgias_sandbox.state import AccountState


@dataclass(slots=True)
class Call:
    """One authenticated API call as handlers see it."""

    account: AccountState
    principal: Principal
    params: tuple[int, ...]
    query: Mapping[str, str]
    body: Any
    now: str
    path: str
    jobs: JobQueue | None = None  # where a created job is queued to run in the background


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer: ``payload`` is serialized as JSON, ``None`` means an empty body."""

    status: int
    payload: Any = None


Handler = Callable[[Call], Reply]
"""Handlers are synchronous: a request is validated and applied without yielding to other requests."""


@dataclass(frozen=True, slots=True)
class Route:
    """An endpoint. ``admin_only`` writes need the admin role (INF: users endpoints)."""

    method: str
    template: str
    handler: Handler
    admin_only: bool = False

    @property
    def writes(self) -> bool:
        """Whether the method changes state (observer agents get 403)."""
        return self.method != "GET"


_PARAM = re.compile(r"\{[^}]+\}")


@dataclass(frozen=True, slots=True)
class Match:
    """A resolved path: the template, its routes by method, and the integer path parameters."""

    template: str
    routes: dict[str, Route]
    params: tuple[int, ...]


class Router:
    """Resolves paths to templates in O(path segments)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._by_key: dict[str, tuple[str, dict[str, Route]]] = {}
        for route in routes:
            key = _PARAM.sub("{}", route.template.strip("/"))
            template, methods = self._by_key.setdefault(key, (route.template, {}))
            if template != route.template:
                raise ValueError(f"{route.template} and {template} are the same path")
            if route.method in methods:
                raise ValueError(f"{route.method} {route.template} registered twice")
            methods[route.method] = route

    def templates(self) -> list[str]:
        """Every ``METHOD template`` known."""
        return sorted(f"{m} {t}" for t, methods in self._by_key.values() for m in methods)

    def resolve(self, path: str) -> Match | None:
        """The route template for ``path`` (``None`` when no template matches)."""
        parts = path.strip("/").split("/")
        params: list[int] = []
        for index, part in enumerate(parts):
            if part.isdigit() and part.isascii():
                params.append(int(part))
                parts[index] = "{}"
        found = self._by_key.get("/".join(parts))
        if found is None:
            return None
        return Match(found[0], found[1], tuple(params))
