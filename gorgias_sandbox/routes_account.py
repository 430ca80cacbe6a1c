"""``GET /api/account``: the account itself (what clients probe to check a domain and its credentials)."""

from __future__ import annotations

from gorgias_sandbox.routing import Call, Reply, Route


def get_account(call: Call) -> Reply:
    """``GET /api/account``: the account's domain (the usual "does this domain exist" probe)."""
    return Reply(200, {"domain": call.account.domain, "status": {"status": "active"},
                       "settings": [], "created_datetime": None})


ROUTES = [Route("GET", "/api/account", get_account)]
