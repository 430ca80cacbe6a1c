"""OAuth scopes on ``/api``: which scope a route needs, and the answer when the access token lacks it.

A Bearer access token carries the scope of the authorization it came from. Every ``/api`` route belongs to
a resource (the table below, README "OAuth apps" step 2): ``GET`` needs ``<resource>:read``, any other
method ``<resource>:write``; the legacy ``write:all`` allows everything. A route the table does not know
is refused (strict: a new route cannot slip through unchecked). Calls with an API key (HTTP Basic) and the
fixed tokens of the sandbox's settings are not scope-checked.

A missing scope is answered as RFC 6750 §3.1 says (Gorgias' own body is not documented): 403 with
``WWW-Authenticate: Bearer error="insufficient_scope", scope="<needed>"`` and a JSON body naming it.
"""

from __future__ import annotations

from gorgias_sandbox.errors import ApiError

LEGACY_SCOPE = "write:all"

RESOURCES: dict[str, str] = {
    "/api/account": "account",
    "/api/tickets": "tickets",  # with their messages, tags and custom field values
    "/api/messages": "tickets",
    "/api/customers": "customers",  # with their data and custom field values
    "/api/custom-fields": "custom_fields",
    "/api/tags": "tags",
    "/api/satisfaction-surveys": "satisfaction_survey",
    "/api/users": "users",
    "/api/jobs": "jobs",
}
"""Route prefix (``/api/<first segment>``) → the resource whose scope its routes need."""


def needed_scope(method: str, template: str) -> str | None:
    """The scope a call of ``method`` on route ``template`` needs; ``None`` when the table knows no resource."""
    prefix = "/".join(template.split("/", 3)[:3])
    resource = RESOURCES.get(prefix)
    if resource is None:
        return None
    return f"{resource}:{'read' if method == 'GET' else 'write'}"


def scope_refusal(granted: str, method: str, template: str) -> ApiError | None:
    """The 403 for a token granted ``granted`` (space-separated) calling ``method template``, or ``None``."""
    tokens = set(granted.split())
    needed = needed_scope(method, template)
    if LEGACY_SCOPE in tokens or (needed is not None and needed in tokens):
        return None
    if needed is None:
        msg = f"No OAuth scope is known for {method} {template}: only {LEGACY_SCOPE} may call it."
        needed = LEGACY_SCOPE
    else:
        msg = f"The access token was not granted the scope {needed}, which {method} {template} needs."
    return ApiError(403, msg, {"error": "insufficient_scope", "scope": needed},
                    headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'})
