"""OAuth scopes: which ones a destination's calls need, which are missing from a grant, and what a 403
``insufficient_scope`` names.

Gorgias documents what each scope covers, not which routes need which; this is our reading of it (README,
OAuth apps, step 2, whose table is generated from :func:`template_scopes`). A route's resource is its first
segment after ``/api/`` (``/api/tickets/1/tags`` → tickets; messages belong to tickets): ``GET`` needs
``<resource>:read``, other methods ``<resource>:write``. A template also reads what it writes (duplicate
checks, read-merge-write, a message before its update), names tags it may create first, reads custom
field definitions, and a ticket job is read until it ends. Every destination reads ``GET /api/account``
(the start check, the probes of a held credential). The legacy ``write:all`` covers everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from worker.core.config.delivery import Coalesce
from worker.core.config.endpoint import EndpointSettings
from worker.core.templates.catalog import get_template
from worker.core.templates.model import Template

LEGACY_SCOPE = "write:all"
ACCOUNT_READ = "account:read"
JOBS = ("jobs:read", "jobs:write")
_RESOURCES = {"messages": "tickets", "custom-fields": "custom_fields", "satisfaction-surveys": "satisfaction_survey"}
_SCOPE_PARAM = re.compile(r'\bscope="([^"]*)"')


def route_resource(url: str) -> str | None:
    """The resource of a Gorgias API URL or path (``tickets``), or None when it is not under ``/api/``."""
    path = urlsplit(url).path
    parts = path.split("/")
    if len(parts) < 3 or parts[1] != "api" or not parts[2] or parts[2].startswith("{"):
        return None
    return _RESOURCES.get(parts[2], parts[2].replace("-", "_"))


def route_scope(method: str, url: str) -> str | None:
    """The scope a call of ``method`` on ``url`` needs (None: not an ``/api/`` route)."""
    resource = route_resource(url)
    if resource is None:
        return None
    return f"{resource}:{'read' if method.upper() == 'GET' else 'write'}"


def template_scopes(template: Template) -> frozenset[str]:
    """What a template's calls need, ``account:read`` aside (README, OAuth apps, step 2)."""
    resource = route_resource(template.url)
    scopes = {f"{resource}:write", f"{resource}:read"} if resource is not None else set()
    if template.plan == "ensure_tags":  # tags named are looked up, and a missing one created first
        scopes |= {"tags:read", "tags:write"}
    if "/custom-fields" in template.url:
        scopes.add("custom_fields:read")
    if template.batch.mode == "job":
        scopes |= set(JOBS)
    return frozenset(scopes)


def needed_scopes(endpoint: EndpointSettings, coalesce: Coalesce = Coalesce.NONE) -> tuple[str, ...]:
    """The scopes a destination with ``endpoint`` (a template, or a method and URL) needs, sorted."""
    scopes = {ACCOUNT_READ}
    if endpoint.template is not None:
        scopes |= template_scopes(get_template(endpoint.template))
    elif endpoint.method is not None and endpoint.url is not None:
        scope = route_scope(endpoint.method, endpoint.url)
        if scope is not None:
            scopes.add(scope)
    if coalesce is Coalesce.JOBS:
        scopes |= set(JOBS)
    return tuple(sorted(scopes))


def missing_scopes(needed: Iterable[str], granted: str | None) -> tuple[str, ...]:
    """Which of ``needed`` a grant of ``granted`` (space-separated) lacks; none when it is unknown (None) or
    holds ``write:all``."""
    if granted is None:
        return ()
    tokens = set(granted.split())
    if LEGACY_SCOPE in tokens:
        return ()
    return tuple(s for s in needed if s not in tokens)


def scope_refusal(route: str, scope: str) -> str:
    """Why a destination is held when Gorgias answered ``route`` (``POST /api/tickets``) 403
    ``insufficient_scope`` naming ``scope`` (``""``: none named)."""
    what = f"scope {scope}" if scope else "a scope this route needs"
    return (f"Gorgias refuses {route}: the OAuth app was not granted {what} — authorize it again with that scope "
            "(README, OAuth apps, step 3)")


def insufficient_scope(www_authenticate: str | None) -> str | None:
    """The scope a ``WWW-Authenticate`` header of a 403 says is missing (RFC 6750 §3.1: ``Bearer
    error="insufficient_scope", scope="tickets:write"``): the scope, ``""`` when it names none, or None
    when the header does not say ``insufficient_scope``."""
    if not www_authenticate or "insufficient_scope" not in www_authenticate:
        return None
    found = _SCOPE_PARAM.search(www_authenticate)
    return found.group(1) if found else ""
