"""Which calls a Gorgias ticket job can make (``delivery.coalesce: jobs``), the job they become, the settings
refused on templates a job cannot express, and one ticket's updates grouped into one call."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from tests.support.templates import body, destination, group, one
from worker.core.config.worker_config import Destination, format_validation_error
from worker.core.templates import renderer_for
from worker.core.templates.job_forms import JobForm, job_form, job_request


def form(template: str, data: dict[str, Any], options: dict[str, Any] | None = None) -> JobForm | None:
    return job_form(template, one(template, data, options))


def coalescing(template: str, options: dict[str, Any] | None = None, **delivery: Any) -> Destination:
    doc = destination(template, options).model_dump(mode="json", exclude_none=True)
    doc["delivery"] = {"coalesce": "jobs", **delivery}
    return Destination.model_validate(doc)


def refusal(template: str | None, options: dict[str, Any] | None = None) -> str:
    """Why a destination coalescing into jobs cannot start: its config model, or its template."""
    try:
        if template is None:
            Destination.model_validate({
                "name": "manual", "source_topics": ["t"], "delivery": {"coalesce": "jobs"},
                "credential": {"domain": "acme", "username": "a@acme.com", "api_key_env": "GORGIAS_API_KEY"},
                "endpoint": {"method": "PUT", "url": "https://{domain}.gorgias.com/api/tickets/{ticket_id}"}})
        else:
            renderer_for(coalescing(template, options))
    except ValidationError as exc:
        return "\n".join(format_validation_error(exc))
    except ValueError as exc:
        return str(exc)
    raise AssertionError("the destination was accepted")


def test_update_ticket_fields_a_job_carries_become_its_updates_in_gorgias_bulk_form() -> None:
    found = form("update_ticket", {"ticket_id": 12, "status": "closed", "priority": "high", "assignee_user_id": 7,
                                   "assignee_team_id": 3, "tags": ["vip", "refund"]})
    assert found is not None and found.ticket_id == 12
    assert found.change.kind == "updateTicket"
    assert found.change.updates == {"status": "closed", "priority": "high", "assignee_user": {"id": 7},
                                    "assignee_team_id": 3, "tags": ["refund", "vip"]}
    trash = form("update_ticket", {"ticket_id": 12, "trashed_datetime": "2026-01-01T00:00:00+00:00"})
    assert trash is not None and trash.change.updates == {"trashed_datetime": "2026-01-01T00:00:00+00:00"}


def test_equal_changes_have_equal_keys_whatever_the_ticket_or_the_tag_order() -> None:
    a = form("update_ticket", {"ticket_id": 1, "tags": ["b", "a"], "status": "open"})
    b = form("update_ticket", {"ticket_id": 2, "status": "open", "tags": "a, b"})
    c = form("update_ticket", {"ticket_id": 3, "status": "closed", "tags": ["a", "b"]})
    assert a is not None and b is not None and c is not None
    assert a.change.key == b.change.key != c.change.key
    tags = form("add_ticket_tags", {"ticket_id": 4, "tags": ["x"]})
    same = form("update_ticket", {"ticket_id": 5, "tags": ["x"]})
    assert tags is not None and same is not None and tags.change.key == same.change.key  # the same job


def test_what_a_job_cannot_make_goes_ticket_by_ticket() -> None:
    assert form("update_ticket", {"ticket_id": 1, "status": "open", "subject": "new"}) is None
    assert form("update_ticket", {"ticket_id": 1, "customer_email": "a@b.co"}) is None
    assert form("update_ticket", {"ticket_id": 1, "tags": [{"id": 4}]}) is None  # tag ids: jobs take names
    assert form("add_ticket_tags", {"ticket_id": 1, "tag_ids": [4]}) is None
    assert form("update_ticket", {"ticket_id": "abc", "status": "open"}) is None  # not a ticket id
    assert form("create_tag", {"name": "vip"}) is None


def test_deletes_become_one_delete_job() -> None:
    found = form("delete_ticket", {"ticket_id": 9})
    assert found is not None and (found.ticket_id, found.change.kind, found.change.updates) == (9, "deleteTicket", None)


def test_the_job_request_lists_each_ticket_once_on_the_calls_origin() -> None:
    member = one("update_ticket", {"ticket_id": 1, "status": "closed"})
    found = job_form("update_ticket", member)
    assert found is not None
    request = job_request(member, found.change, [1, 2, 1, 3])
    assert (request.method, request.url) == ("POST", "https://acme.gorgias.com/api/jobs")
    assert orjson.loads(request.body or b"") == {"type": "updateTicket",
                                                 "params": {"ticket_ids": [1, 2, 3], "updates": {"status": "closed"}}}
    assert request.headers["Content-Type"] == "application/json"
    delete = job_form("delete_ticket", one("delete_ticket", {"ticket_id": 5}))
    assert delete is not None
    assert orjson.loads(job_request(member, delete.change, [5]).body or b"") == {
        "type": "deleteTicket", "params": {"ticket_ids": [5]}}


def test_coalescing_is_refused_where_a_job_cannot_express_the_template_naming_the_setting() -> None:
    assert refusal("add_ticket_message").startswith(
        "delivery.coalesce: a Gorgias ticket job cannot make what template add_ticket_message does")
    assert "templates that can: add_ticket_tags, delete_ticket, update_ticket" in refusal("set_ticket_tags")
    assert refusal("ticket_job").startswith("delivery.coalesce: ticket_job sends every call as a job already")
    assert refusal("update_ticket", {"tags": "replace"}).startswith(
        "delivery.coalesce: a job adds tags to its tickets and cannot replace them")
    assert "delivery.coalesce: jobs needs an endpoint template" in refusal(None)


def test_coalescing_destinations_take_job_polling_options() -> None:
    dest = coalescing("update_ticket", {"job": {"first_poll_s": 1, "max_poll_interval_s": 5}}, coalesce_max_tickets=50)
    renderer_for(dest)
    assert dest.delivery.coalesce_max_tickets == 50
    with pytest.raises(ValueError, match=r"template_options\.job: template update_ticket creates no Gorgias job"):
        renderer_for(destination("update_ticket", {"job": {"first_poll_s": 1}}))
    with pytest.raises(ValidationError, match="coalesce_max_tickets"):
        coalescing("update_ticket", coalesce_max_tickets=1)


def test_one_tickets_updates_group_into_one_later_fields_win_tags_added_together() -> None:
    rows = [{"ticket_id": 1, "status": "closed", "tags": ["a"]}, {"ticket_id": 1, "status": "open", "tags": ["b"]},
            {"ticket_id": 1, "priority": "low", "tags": ["a"]}]
    keyed = {"algorithm": "by_attribute", "attributes": ["ticket_id"]}
    request = group("update_ticket", rows, keyed)
    assert body(request) == {"status": "open", "priority": "low", "tags": [{"name": "a"}, {"name": "b"}]}
    assert request.plan is not None  # the tags are added (POST .../tags), the rest PUT
    replaced = body(group("update_ticket", rows, keyed, {"tags": "replace"}))
    assert replaced["tags"] == [{"name": "a"}]  # as if each record were sent in turn
