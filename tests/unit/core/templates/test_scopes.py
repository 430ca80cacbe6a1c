"""The OAuth scopes a destination needs (README, OAuth apps, step 2), what a grant lacks, and what a 403
insufficient_scope names."""

from __future__ import annotations

import pytest

from worker.core.config.delivery import Coalesce
from worker.core.config.endpoint import EndpointSettings
from worker.core.templates.catalog import list_templates
from worker.core.templates.scopes import (
    insufficient_scope,
    missing_scopes,
    needed_scopes,
    route_scope,
    scope_refusal,
)


def templated(name: str) -> EndpointSettings:
    return EndpointSettings(template=name)


@pytest.mark.parametrize(("template", "scopes"), [
    ("create_ticket", ("account:read", "tags:read", "tags:write", "tickets:read", "tickets:write")),
    ("add_ticket_message", ("account:read", "tickets:read", "tickets:write")),
    ("set_customer_field", ("account:read", "custom_fields:read", "customers:read", "customers:write")),
    ("create_satisfaction_survey", ("account:read", "satisfaction_survey:read", "satisfaction_survey:write")),
    ("ticket_job", ("account:read", "jobs:read", "jobs:write")),
    ("create_tag", ("account:read", "tags:read", "tags:write")),
])
def test_a_template_needs_its_resource_and_what_it_reads_besides(template: str, scopes: tuple[str, ...]) -> None:
    assert needed_scopes(templated(template)) == scopes


def test_coalescing_into_jobs_needs_the_jobs_scopes_too() -> None:
    assert needed_scopes(templated("update_ticket"), Coalesce.JOBS) == (
        "account:read", "jobs:read", "jobs:write", "tags:read", "tags:write", "tickets:read", "tickets:write")


def test_a_method_and_url_need_their_route_scope() -> None:
    manual = EndpointSettings(method="PUT", url="https://{domain}.gorgias.com/api/customers/{customer_id}/data")
    assert needed_scopes(manual) == ("account:read", "customers:write")
    assert route_scope("GET", "/api/messages?ticket_id=1") == "tickets:read"
    assert route_scope("POST", "https://acme.gorgias.com/api/integrations") == "integrations:write"
    assert route_scope("POST", "https://hooks.example.com/in") is None


def test_every_template_needs_at_least_one_scope_of_its_own() -> None:
    assert all(len(needed_scopes(templated(t.name))) > 1 for t in list_templates())


def test_what_a_grant_lacks_unknown_and_legacy_grants_lack_nothing() -> None:
    needed = needed_scopes(templated("create_ticket"))
    assert missing_scopes(needed, "openid offline account:read tickets:read tags:read tags:write") == (
        "tickets:write",)
    assert missing_scopes(needed, None) == ()
    assert missing_scopes(needed, "openid offline write:all") == ()


def test_the_scope_a_403_names_and_the_hold_reason() -> None:
    assert insufficient_scope('Bearer error="insufficient_scope", scope="tickets:write"') == "tickets:write"
    assert insufficient_scope('Bearer realm="x", error="insufficient_scope"') == ""
    assert insufficient_scope('Bearer error="invalid_token"') is None
    assert insufficient_scope(None) is None
    assert scope_refusal("POST /api/tickets", "tickets:write") == (
        "Gorgias refuses POST /api/tickets: the OAuth app was not granted scope tickets:write — authorize it again "
        "with that scope (README, OAuth apps, step 3)")
    assert "a scope this route needs" in scope_refusal("POST /api/tickets", "")
