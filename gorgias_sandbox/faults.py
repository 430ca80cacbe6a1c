"""Fault injection: errors, latency, dropped and hung connections, 429 bursts, maintenance windows.

A configuration is a list of rules, each optionally scoped to an HTTP method and/or a route template
(``/api/tickets/{id}``; shell-style wildcards allowed). It comes as a spec string (``--faults``)::

    503=0.1@POST /api/tickets, latency=5-20ms, drop=0.01, burst429=3, maintenance=30s

or as JSON (``PUT /__admin/faults``)::

    {"rules": [{"kind": "error", "status": 503, "probability": 0.1, "method": "POST",
                "route": "/api/tickets"}], "seed": 7}

Spec items (comma or semicolon separated; ``P`` is a probability in [0, 1])::

    500=P | 502=P | 503=P       answer that status instead of handling the request
    latency=MIN-MAXms[:P]       wait uniformly MIN..MAX ms before handling (latency=20ms: fixed)
    drop=P                      close the connection without answering; nothing applied
    hang=P[:SECONDS]            never answer (bounded, default 300 s, then the connection is closed)
    apply_then_drop=P           apply the request, then close the connection without answering
    burst429=N[:RETRY_AFTER]    the next N matching requests get 429 (Retry-After default 1)
    maintenance=DURATIONs|on    503 "An external service had an issue." for that long / until removed
    job_errored=P               a job created now ends ``errored`` (half of its tickets done, INF)
    job_fatal_errored=P         a job created now ends ``fatal_errored`` (nothing done)
    ...@SCOPE                   SCOPE = METHOD, ROUTE or "METHOD ROUTE" (ROUTE starts with '/')

Draws come from one ``random.Random(seed)``, so a seeded run with the same requests is reproducible.
"""

from __future__ import annotations

import fnmatch
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gorgias_sandbox.ratelimit import Clock

FaultKind = Literal["error", "latency", "drop", "hang", "burst429", "maintenance", "apply_then_drop", "job_failure"]
JobFailure = Literal["errored", "fatal_errored"]
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


class FaultRule(BaseModel):
    """One fault. Which fields matter depends on ``kind`` (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    status: Literal[500, 502, 503] | None = None
    min_ms: float = Field(default=0.0, ge=0.0)
    max_ms: float = Field(default=0.0, ge=0.0)
    count: int = Field(default=0, ge=0)
    retry_after_s: int = Field(default=1, ge=0)
    duration_s: float | None = Field(default=None, gt=0)
    max_s: float | None = Field(default=None, gt=0)
    job_status: JobFailure | None = None
    method: str | None = None
    route: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FaultRule:
        if self.kind == "error" and self.status is None:
            raise ValueError("an error rule needs status 500, 502 or 503")
        if self.kind != "error" and self.status is not None:
            raise ValueError("status only applies to kind 'error'")
        if (self.kind == "job_failure") != (self.job_status is not None):
            raise ValueError("a job_failure rule needs job_status errored or fatal_errored (and only it has one)")
        if self.max_ms < self.min_ms:
            if self.max_ms == 0:
                self.max_ms = self.min_ms
            else:
                raise ValueError("max_ms must be >= min_ms")
        if self.method is not None:
            self.method = self.method.upper()
            if self.method not in METHODS:
                raise ValueError(f"unknown method {self.method!r}")
        if self.route is not None:
            route = self.route.strip()
            if not route.startswith("/"):
                raise ValueError("route must start with '/'")
            self.route = route.rstrip("/") or "/"
        return self

    def label(self) -> str:
        """The name injected faults of this rule are counted under (``503``, ``drop``, ...)."""
        if self.kind == "job_failure":
            return f"job_{self.job_status}"
        return str(self.status) if self.kind == "error" else self.kind


class FaultConfig(BaseModel):
    """A whole fault configuration."""

    model_config = ConfigDict(extra="forbid")

    rules: list[FaultRule] = Field(default_factory=list)


def parse_fault_config(value: str | dict[str, Any] | FaultConfig) -> FaultConfig:
    """A :class:`FaultConfig` from a spec string, its JSON form (``{"rules": [...]}`` or
    ``{"spec": "..."}``) or an existing config. Raises ``ValueError`` with a readable message."""
    if isinstance(value, FaultConfig):
        return value
    if isinstance(value, str):
        return parse_fault_spec(value)
    if isinstance(value, dict) and "spec" in value:
        extra = set(value) - {"spec", "seed"}
        if extra or not isinstance(value["spec"], str):
            raise ValueError("give either {'spec': '...'} or {'rules': [...]}")
        return parse_fault_spec(value["spec"])
    try:
        return FaultConfig.model_validate({k: v for k, v in value.items() if k != "seed"})
    except ValidationError as exc:
        raise ValueError(_readable(exc)) from None


def _readable(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'faults'}: {e['msg']}" for e in exc.errors())


_PROB = r"(?:0(?:\.\d+)?|1(?:\.0+)?|\.\d+)"
_ITEM = re.compile(r"^(?P<kind>[a-z_0-9]+)(?:=(?P<args>[^@]*))?(?:@(?P<scope>.+))?$")


def parse_fault_spec(spec: str) -> FaultConfig:
    """Parse the ``--faults`` string (grammar in the module docstring). ``ValueError`` when malformed."""
    rules: list[FaultRule] = []
    for raw in re.split(r"[;,]", spec):
        item = raw.strip()
        if not item:
            continue
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"fault {item!r}: expected KIND=ARGS[@SCOPE]")
        kind, args = match.group("kind"), (match.group("args") or "").strip()
        fields = _spec_fields(item, kind, args)
        method, route = _scope(item, match.group("scope"))
        try:
            rules.append(FaultRule(method=method, route=route, **fields))
        except ValidationError as exc:
            raise ValueError(f"fault {item!r}: {_readable(exc)}") from None
    return FaultConfig(rules=rules)


# complexity: one branch per fault kind of the --faults grammar
def _spec_fields(item: str, kind: str, args: str) -> dict[str, Any]:  # noqa: C901
    def bad(expected: str) -> ValueError:
        return ValueError(f"fault {item!r}: expected {expected}")

    if kind in ("500", "502", "503"):
        if not re.fullmatch(_PROB, args):
            raise bad(f"{kind}=PROBABILITY")
        return {"kind": "error", "status": int(kind), "probability": float(args)}
    if kind in ("drop", "apply_then_drop"):
        if not re.fullmatch(_PROB, args):
            raise bad(f"{kind}=PROBABILITY")
        return {"kind": kind, "probability": float(args)}
    if kind == "hang":
        m = re.fullmatch(rf"({_PROB})(?::(\d+(?:\.\d+)?)s?)?", args)
        if not m:
            raise bad("hang=PROBABILITY[:SECONDS]")
        return {"kind": "hang", "probability": float(m.group(1)),
                "max_s": float(m.group(2)) if m.group(2) else None}
    if kind == "latency":
        m = re.fullmatch(rf"(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?(?:ms)?(?::({_PROB}))?", args)
        if not m:
            raise bad("latency=MIN-MAXms[:PROBABILITY]")
        low = float(m.group(1))
        high = float(m.group(2)) if m.group(2) else low
        return {"kind": "latency", "min_ms": low, "max_ms": high,
                "probability": float(m.group(3)) if m.group(3) else 1.0}
    if kind in ("job_errored", "job_fatal_errored"):
        if not re.fullmatch(_PROB, args):
            raise bad(f"{kind}=PROBABILITY")
        return {"kind": "job_failure", "job_status": kind.removeprefix("job_"), "probability": float(args)}
    if kind == "burst429":
        m = re.fullmatch(r"(\d+)(?::(\d+)s?)?", args)
        if not m:
            raise bad("burst429=COUNT[:RETRY_AFTER_SECONDS]")
        return {"kind": "burst429", "count": int(m.group(1)),
                "retry_after_s": int(m.group(2)) if m.group(2) else 1}
    if kind == "maintenance":
        if args in ("", "on"):
            return {"kind": "maintenance"}
        m = re.fullmatch(r"(\d+(?:\.\d+)?)s?", args)
        if not m:
            raise bad("maintenance=SECONDS|on")
        return {"kind": "maintenance", "duration_s": float(m.group(1))}
    raise ValueError(f"fault {item!r}: unknown kind {kind!r} (500, 502, 503, latency, drop, hang, "
                     "apply_then_drop, burst429, maintenance, job_errored, job_fatal_errored)")


def _scope(item: str, scope: str | None) -> tuple[str | None, str | None]:
    if scope is None:
        return None, None
    parts = scope.strip().replace(":", " ", 1).split() if not scope.strip().startswith("/") else [scope.strip()]
    if len(parts) == 1:
        if parts[0].startswith("/"):
            return None, parts[0]
        return parts[0].upper(), None
    if len(parts) == 2 and parts[1].startswith("/"):
        return parts[0].upper(), parts[1]
    raise ValueError(f"fault {item!r}: scope must be METHOD, ROUTE or 'METHOD ROUTE'")


@dataclass(frozen=True, slots=True)
class Injected:
    """A fault chosen for one request: ``kind`` (error/drop/hang/burst429/maintenance), ``status`` for
    errors, ``retry_after_s`` for 429 bursts and ``hang_s`` for hangs."""

    kind: str
    status: int = 0
    retry_after_s: int = 1
    hang_s: float = 0.0


class _Live:
    """A rule plus its running state (remaining burst, maintenance deadline, scope-match cache)."""

    __slots__ = ("ends_at", "matches", "remaining", "rule")

    def __init__(self, rule: FaultRule, now: float) -> None:
        self.rule = rule
        self.remaining = rule.count
        self.ends_at = None if rule.duration_s is None else now + rule.duration_s
        self.matches: dict[tuple[str, str | None], bool] = {}

    def applies(self, method: str, template: str | None) -> bool:
        key = (method, template)
        hit = self.matches.get(key)
        if hit is None:
            rule = self.rule
            hit = (rule.method is None or rule.method == method) and (
                rule.route is None or (template is not None and fnmatch.fnmatchcase(template, rule.route))
            )
            self.matches[key] = hit
        return hit


class FaultInjector:
    """Decides, request by request, which configured fault (if any) happens, and counts them."""

    def __init__(self, config: FaultConfig, seed: int | None, clock: Clock, hang_max_s: float = 300.0) -> None:
        self._clock = clock
        self._hang_max_s = hang_max_s
        self.injected: Counter[str] = Counter()
        self.seed = seed
        self._rng = random.Random(seed)
        self._live: list[_Live] = []
        self._latency: list[_Live] = []
        self._gate: list[_Live] = []
        self._pre: list[_Live] = []
        self._post: list[_Live] = []
        self._jobs: list[_Live] = []
        self.replace(config, seed)

    def replace(self, config: FaultConfig, seed: int | None = None) -> None:
        """Install a new configuration (durations start now); a given ``seed`` re-seeds the draws."""
        if seed is not None:
            self.seed = seed
            self._rng = random.Random(seed)
        now = self._clock()
        self._live = [_Live(rule, now) for rule in config.rules]
        self._latency = [x for x in self._live if x.rule.kind == "latency"]
        self._gate = [x for x in self._live if x.rule.kind in ("maintenance", "burst429")]
        self._pre = [x for x in self._live if x.rule.kind in ("error", "drop", "hang")]
        self._post = [x for x in self._live if x.rule.kind == "apply_then_drop"]
        self._jobs = [x for x in self._live if x.rule.kind == "job_failure"]

    def reset_counts(self) -> None:
        """Forget how many faults were injected."""
        self.injected.clear()

    @property
    def active(self) -> bool:
        """True when any rule is configured (the hot path skips everything otherwise)."""
        return bool(self._live)

    def _fires(self, live: _Live) -> bool:
        p = live.rule.probability
        return p >= 1.0 or (p > 0.0 and self._rng.random() < p)

    def latency_s(self, method: str, template: str | None) -> float:
        """Seconds to wait before handling this request (0 when no latency rule fires)."""
        total = 0.0
        for live in self._latency:
            if live.applies(method, template) and self._fires(live):
                rule = live.rule
                total += self._rng.uniform(rule.min_ms, rule.max_ms) / 1000.0
                self.injected["latency"] += 1
        return total

    def gate(self, method: str, template: str | None) -> Injected | None:
        """Maintenance (503) or a 429 burst: checked before the rate limit."""
        now = None
        for live in self._gate:
            if not live.applies(method, template):
                continue
            if live.rule.kind == "maintenance":
                if live.ends_at is not None:
                    now = self._clock() if now is None else now
                    if now >= live.ends_at:
                        continue
                self.injected["maintenance"] += 1
                return Injected("maintenance", 503)
            if live.remaining > 0:
                live.remaining -= 1
                self.injected["burst429"] += 1
                return Injected("burst429", 429, retry_after_s=live.rule.retry_after_s)
        return None

    def before_handling(self, method: str, template: str | None) -> Injected | None:
        """An injected error status, a dropped connection or a hang, decided before anything is applied."""
        for live in self._pre:
            if live.applies(method, template) and self._fires(live):
                rule = live.rule
                label = rule.label()
                self.injected[label] += 1
                if rule.kind == "error":
                    return Injected("error", rule.status or 500)
                if rule.kind == "drop":
                    return Injected("drop")
                return Injected("hang", hang_s=min(rule.max_s or self._hang_max_s, self._hang_max_s))
        return None

    def drop_after_applying(self, method: str, template: str | None) -> bool:
        """Whether to close the connection instead of sending the (already applied) answer."""
        for live in self._post:
            if live.applies(method, template) and self._fires(live):
                self.injected["apply_then_drop"] += 1
                return True
        return False

    def job_failure(self) -> str | None:
        """The final status forced on a job being created (``errored`` / ``fatal_errored``), or None."""
        for live in self._jobs:
            if self._fires(live):
                self.injected[live.rule.label()] += 1
                return live.rule.job_status
        return None

    def describe(self) -> dict[str, Any]:
        """The configuration with live state (burst remaining, maintenance seconds left), for the admin API."""
        now = self._clock()
        rules = []
        for live in self._live:
            data = live.rule.model_dump(exclude_defaults=True)
            data["kind"] = live.rule.kind
            if live.rule.kind == "burst429":
                data["remaining"] = live.remaining
            if live.rule.kind == "maintenance":
                data["active"] = live.ends_at is None or now < live.ends_at
                data["remaining_s"] = None if live.ends_at is None else max(0.0, live.ends_at - now)
            rules.append(data)
        return {"rules": rules, "seed": self.seed, "injected": dict(self.injected)}
