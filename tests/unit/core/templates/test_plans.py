"""The plans templates attach: read-merge-write custom fields, tags created first, upsert's lookup."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from tests.support.templates import group, one
from worker.core.requests.request import Plan, PlanError, Step, StepResult
from worker.core.templates.plans import EnsureTags, MergeFieldValues, UpsertCustomer


def plan_of(request: Any) -> Plan:
    assert request.plan is not None
    return request.plan  # type: ignore[no-any-return]


def answer(step: Step, status: int, body: Any) -> StepResult:
    return StepResult(step, status, body)


def sent(step: Step) -> Any:
    return orjson.loads(step.request.body) if step.request.body else None


def test_custom_fields_keep_the_values_the_records_do_not_mention() -> None:
    rows: list[dict[str, Any]] = [{"ticket_id": 7, "field_id": 1, "value": "Shipping"},
                                  {"ticket_id": 7, "custom_fields": [{"id": 2, "value": 5}]}]
    plan = plan_of(group("set_ticket_custom_fields", rows, {"algorithm": "by_attribute", "attributes": ["ticket_id"]}))
    assert isinstance(plan, MergeFieldValues)
    read = plan.next_step([])
    assert read is not None and (read.request.method, read.request.url) == (
        "GET", "https://acme.gorgias.com/api/tickets/7/custom-fields")
    assert read.request.body is None and not read.final
    current = {"data": [  # the shape recorded from a real account
        {"field": {"id": 1, "label": "Reason"}, "prediction": None, "value": "Billing"},
        {"field": {"id": 3, "label": "AI intent"}, "prediction": None, "value": "order/status"},
        {"field": {"id": 4, "label": "Empty"}, "prediction": None, "value": None},
    ]}
    write = plan.next_step([answer(read, 200, current)])
    assert write is not None and write.final
    assert (write.request.method, write.request.url) == ("PUT", "https://acme.gorgias.com/api/tickets/7/custom-fields")
    assert sorted(sent(write), key=lambda v: v["id"]) == [
        {"id": 1, "value": "Shipping"}, {"id": 2, "value": 5}, {"id": 3, "value": "order/status"}]
    assert plan.next_step([answer(read, 200, current), answer(write, 200, {"data": []})]) is None


def test_custom_fields_read_every_page_and_accept_a_bare_array() -> None:
    plan = plan_of(one("set_customer_custom_fields", {"customer_id": 9, "field_id": 5, "value": "gold"}))
    read = plan.next_step([])
    assert read is not None
    first = answer(read, 200, {"data": [{"id": 6, "value": 12}], "meta": {"next_cursor": "abc"}})
    more = plan.next_step([first])
    assert more is not None and more.request.method == "GET"
    assert parse_qs(urlsplit(more.request.url).query) == {"cursor": ["abc"]}
    write = plan.next_step([first, answer(more, 200, [{"id": 7, "value": True}])])
    assert write is not None
    assert sent(write) == [{"id": 6, "value": 12}, {"id": 7, "value": True}, {"id": 5, "value": "gold"}]


def test_an_unreadable_current_values_answer_stops_the_plan() -> None:
    plan = plan_of(one("set_ticket_custom_fields", {"ticket_id": 7, "field_id": 1, "value": "x"}))
    read = plan.next_step([])
    assert read is not None
    with pytest.raises(PlanError, match="unexpected list answer"):
        plan.next_step([answer(read, 200, "<html>")])
    with pytest.raises(PlanError, match="without a field id"):
        plan.next_step([answer(read, 200, {"data": [{"value": 1}]})])


def test_tag_names_are_created_first_then_the_write() -> None:
    plan = plan_of(one("add_ticket_tags", {"ticket_id": 3, "tags": ["vip", "refund", 12]}))
    assert isinstance(plan, EnsureTags) and plan.names == ("vip", "refund")
    done: list[StepResult] = []
    seen = []
    while (step := plan.next_step(done)) is not None:
        seen.append(step)
        done.append(answer(step, 400 if step.known_as == "tag:vip" else 201, None))
    assert [(s.request.method, s.request.url, sent(s)) for s in seen[:2]] == [
        ("POST", "https://acme.gorgias.com/api/tags", {"name": "vip"}),
        ("POST", "https://acme.gorgias.com/api/tags", {"name": "refund"})]
    assert all(s.accept == {400, 409} for s in seen[:2]) and [s.known_as for s in seen[:2]] == ["tag:vip", "tag:refund"]
    assert seen[2].final and seen[2].request.url == "https://acme.gorgias.com/api/tickets/3/tags"
    assert sent(seen[2]) == {"names": ["vip", "refund"], "ids": [12]}


def test_tags_by_id_only_and_removals_need_no_plan() -> None:
    assert one("add_ticket_tags", {"ticket_id": 3, "tag_ids": [4]}).plan is None
    assert one("remove_ticket_tags", {"ticket_id": 3, "tags": ["vip"]}).plan is None


def test_upsert_looks_up_by_email_then_updates_the_one_found_without_touching_its_channels() -> None:
    plan = plan_of(one("upsert_customer", {"email": "Jane@Example.com", "name": "Jane", "phone": "+331234"}))
    assert isinstance(plan, UpsertCustomer) and plan.by == "email"
    look = plan.next_step([])
    assert look is not None and look.request.method == "GET"
    assert parse_qs(urlsplit(look.request.url).query) == {"email": ["Jane@Example.com"], "limit": ["30"]}
    found = {"data": [{"id": 8, "email": "someone@else.com"}, {"id": 9, "email": "jane@example.com"}]}
    write = plan.next_step([answer(look, 200, found)])
    assert write is not None and write.final
    assert (write.request.method, write.request.url) == ("PUT", "https://acme.gorgias.com/api/customers/9")
    assert sent(write) == {"name": "Jane", "email": "Jane@Example.com"}


def test_upsert_creates_when_nobody_matches_exactly() -> None:
    plan = plan_of(one("upsert_customer", {"external_id": "crm-1", "name": "Jane", "phone": "+331234"}))
    look = plan.next_step([])
    assert look is not None and "external_id=crm-1" in look.request.url
    write = plan.next_step([answer(look, 200, {"data": [{"id": 3, "external_id": "crm-10"}]})])
    assert write is not None and (write.request.method, write.request.url) == (
        "POST", "https://acme.gorgias.com/api/customers")
    assert sent(write)["channels"] == [{"type": "phone", "address": "+331234", "preferred": True}]


def test_upsert_refuses_to_choose_between_two_matching_customers() -> None:
    plan = plan_of(one("upsert_customer", {"external_id": "crm-1", "phone": "+331234"}))
    look = plan.next_step([])
    assert look is not None
    two = [{"id": 3, "external_id": "crm-1"}, {"id": 4, "external_id": "crm-1"}]
    with pytest.raises(PlanError, match=r"2 customers have external_id 'crm-1' \(ids 3, 4\)"):
        plan.next_step([answer(look, 200, {"data": two})])


def test_a_plan_is_described_in_the_preview_lines() -> None:
    lines = plan_of(one("set_ticket_custom_fields", {"ticket_id": 7, "field_id": 1, "value": "x"})).describe()
    assert lines[0].startswith("GET https://acme.gorgias.com/api/tickets/7/custom-fields")
    assert lines[1].startswith("PUT https://acme.gorgias.com/api/tickets/7/custom-fields")


def test_tickets_naming_tags_make_sure_they_exist_too() -> None:
    plan = plan_of(one("create_ticket", {"body_text": "x", "customer_email": "a@b.co", "tags": ["vip", 4]}))
    assert isinstance(plan, EnsureTags) and plan.names == ("vip",)
    first = plan.next_step([])
    assert first is not None and sent(first) == {"name": "vip"}
    last = plan.next_step([answer(first, 201, {"id": 9})])
    assert last is not None and last.final and last.request.url == "https://acme.gorgias.com/api/tickets"
    assert one("update_ticket", {"ticket_id": 1, "status": "closed"}).plan is None
    assert isinstance(one("update_ticket", {"ticket_id": 1, "tags": "a, b"}).plan, EnsureTags)


def test_upsert_whose_create_meets_a_customer_created_meanwhile_updates_it() -> None:
    plan = plan_of(one("upsert_customer", {"email": "jane@example.com", "note": "VIP"}))
    look = plan.next_step([])
    assert look is not None
    create = plan.next_step([answer(look, 200, {"data": []})])
    assert create is not None and create.request.method == "POST" and not create.final
    assert create.accept == {400, 409}
    done = [answer(look, 200, {"data": []}), answer(create, 400, {"error": {"msg": "Email already used."}})]
    again = plan.next_step(done)
    assert again is not None and again.request.method == "GET" and "again" in again.purpose
    found = {"data": [{"id": 5, "email": "jane@example.com"}]}
    update = plan.next_step([*done, answer(again, 200, found)])
    assert update is not None and update.final and update.request.url.endswith("/api/customers/5")
    with pytest.raises(PlanError, match=r"creating the customer answered 400 \(.*Email already used.*\) and no "
                                        r"customer has email 'jane@example.com'"):
        plan.next_step([*done, answer(again, 200, {"data": []})])
    assert plan.next_step([answer(look, 200, {"data": []}), answer(create, 201, {"id": 6})]) is None


AGENT_REPLY = {  # a message as Gorgias answers it (the fields the plan reads, plus some it must not send back)
    "id": 456, "channel": "email", "via": "helpdesk", "from_agent": True, "public": True,
    "sender": {"id": 3, "email": "agent@acme.com", "name": "Agent", "firstname": "A", "lastname": "B", "meta": None},
    "receiver": {"id": 9, "email": "jane@example.com", "name": "Jane", "firstname": None, "lastname": None,
                 "meta": None},
    "source": {"type": "email", "from": {"address": "agent@acme.com", "name": "Agent"},
               "to": [{"address": "jane@example.com", "name": "Jane", "extra_key": 1}]},
    "body_text": "It ships on Tusday.", "created_datetime": "2026-01-01T00:00:00+00:00",
    "sent_datetime": "2026-01-01T00:00:05+00:00", "imported": False, "uri": "/api/tickets/123/messages/456/",
}


def update_plan(record: dict[str, Any], options: dict[str, Any] | None = None) -> Plan:
    return plan_of(one("update_ticket_message", {"ticket_id": 123, "message_id": 456, **record}, options))


def test_a_message_update_sends_the_message_back_as_it_is_with_the_changes() -> None:
    plan = update_plan({"body_text": "It ships on Tuesday."})
    read = plan.next_step([])
    assert read is not None and read.request.method == "GET" and read.request.url.endswith("/messages/456")
    write = plan.next_step([answer(read, 200, AGENT_REPLY)])
    assert write is not None and write.final and write.request.method == "PUT"
    assert sent(write) == {
        "channel": "email", "via": "helpdesk", "from_agent": True,
        "sender": {"id": 3, "email": "agent@acme.com"}, "receiver": {"id": 9, "email": "jane@example.com"},
        "source": {"type": "email", "from": {"address": "agent@acme.com", "name": "Agent"},
                   "to": [{"address": "jane@example.com", "name": "Jane"}]},
        "body_text": "It ships on Tuesday.", "sent_datetime": "2026-01-01T00:00:05+00:00",
    }
    assert plan.next_step([answer(read, 200, AGENT_REPLY), answer(write, 202, {})]) is None


def test_the_record_changes_win_and_its_own_sent_datetime_is_kept() -> None:
    plan = update_plan({"body_text": "x", "channel": "internal-note", "sent_datetime": "2026-02-02T00:00:00Z"})
    read = plan.next_step([])
    assert read is not None
    write = plan.next_step([answer(read, 200, AGENT_REPLY)])
    assert write is not None
    assert sent(write)["channel"] == "internal-note" and sent(write)["sent_datetime"] == "2026-02-02T00:00:00Z"


def test_a_message_never_sent_keeps_its_creation_time_so_it_is_not_sent_now() -> None:
    plan = update_plan({"body_text": "x"})
    read = plan.next_step([])
    assert read is not None
    write = plan.next_step([answer(read, 200, {**AGENT_REPLY, "sent_datetime": None})])
    assert write is not None and sent(write)["sent_datetime"] == AGENT_REPLY["created_datetime"]


@pytest.mark.parametrize(("record", "options", "sends"), [
    ({"send": True}, None, False),  # import mode (default): a record cannot ask
    ({"send": True, "sent_datetime": None}, None, False),
    ({"sent_datetime": None}, {"mode": "send"}, False),  # send mode, but the record does not ask
    ({"send": "yes"}, {"mode": "send"}, True),
])
def test_only_a_record_asking_in_send_mode_lets_gorgias_send_the_update(
        record: dict[str, Any], options: dict[str, Any] | None, sends: bool) -> None:
    request = one("update_ticket_message", {"ticket_id": 123, "message_id": 456, "body_text": "x", **record}, options)
    plan = plan_of(request)
    read = plan.next_step([])
    assert read is not None
    write = plan.next_step([answer(read, 200, AGENT_REPLY)])
    assert write is not None
    assert ("sent_datetime" not in sent(write)) is sends
    assert bool(request.notes) is sends  # preview warns


def test_an_unreadable_message_stops_the_update() -> None:
    plan = update_plan({"body_text": "x"})
    read = plan.next_step([])
    assert read is not None
    with pytest.raises(PlanError, match="unexpected message"):
        plan.next_step([answer(read, 200, {"id": 456})])


def run(plan: Plan, answers: dict[str, list[int]]) -> list[Step]:
    """Drive ``plan``: each step gets the next status scripted for its ``METHOD path`` (2xx by default)."""
    done: list[StepResult] = []
    seen: list[Step] = []
    while (step := plan.next_step(done)) is not None:
        seen.append(step)
        key = f"{step.request.method} {urlsplit(step.request.url).path}"
        statuses = answers.get(key) or [200]
        done.append(answer(step, statuses.pop(0) if len(statuses) > 1 else statuses[0], None))
        assert len(seen) < 20
    return seen


def test_a_tag_write_refused_recreates_each_name_once_forgetting_them_and_retries_once() -> None:
    plan = plan_of(one("add_ticket_tags", {"ticket_id": 3, "tags": ["vip", "late"]}))
    seen = run(plan, {"POST /api/tickets/3/tags": [400, 200], "POST /api/tags": [409]})
    assert [(s.request.method, urlsplit(s.request.url).path, s.forget) for s in seen] == [
        ("POST", "/api/tags", False), ("POST", "/api/tags", False), ("POST", "/api/tickets/3/tags", False),
        ("POST", "/api/tags", True), ("POST", "/api/tags", True), ("POST", "/api/tickets/3/tags", False)]
    assert seen[2].accept == {400} and seen[5].accept == frozenset() and seen[5].final


def test_a_second_refusal_is_not_retried() -> None:
    plan = plan_of(one("set_ticket_tags", {"ticket_id": 3, "tags": ["vip"]}))
    seen = run(plan, {"PUT /api/tickets/3/tags": [400]})
    assert [urlsplit(s.request.url).path for s in seen] == ["/api/tags", "/api/tickets/3/tags", "/api/tags",
                                                          "/api/tickets/3/tags"]


def test_update_ticket_adds_its_tags_by_default_and_puts_the_rest_without_them() -> None:
    seen = run(plan_of(one("update_ticket", {"ticket_id": 3, "status": "closed", "tags": ["vip", 12]})), {})
    assert [(s.request.method, urlsplit(s.request.url).path) for s in seen] == [
        ("POST", "/api/tags"), ("POST", "/api/tickets/3/tags"), ("PUT", "/api/tickets/3")]
    assert sent(seen[1]) == {"names": ["vip"], "ids": [12]} and not seen[1].final
    assert sent(seen[2]) == {"status": "closed"} and seen[2].final
    only_tags = run(plan_of(one("update_ticket", {"ticket_id": 3, "tags": ["vip"]})), {})
    assert [s.request.method for s in only_tags] == ["POST", "POST"] and only_tags[-1].final
    nothing_to_add = run(plan_of(one("update_ticket", {"ticket_id": 3, "status": "open", "tags": []})), {})
    assert [(s.request.method, sent(s)) for s in nothing_to_add] == [("PUT", {"status": "open"})]


def test_update_ticket_replaces_its_tags_only_when_told() -> None:
    request = one("update_ticket", {"ticket_id": 3, "status": "closed", "tags": ["vip"]}, {"tags": "replace"})
    seen = run(plan_of(request), {})
    assert [(s.request.method, urlsplit(s.request.url).path) for s in seen] == [
        ("POST", "/api/tags"), ("PUT", "/api/tickets/3")]
    assert sent(seen[1]) == {"status": "closed", "tags": [{"name": "vip"}]}


def test_a_merge_without_fields_sends_the_kept_customer_s_own_name_never_an_empty_body() -> None:
    plan = plan_of(one("merge_customers", {"source_id": 5, "target_id": 9}))
    read = plan.next_step([])
    assert read is not None and (read.request.method, read.request.url) == (
        "GET", "https://acme.gorgias.com/api/customers/9")
    merge = plan.next_step([answer(read, 200, {"id": 9, "name": "Jane Doe", "email": "jane@example.com"})])
    assert merge is not None and merge.final and merge.request.method == "PUT"
    assert merge.request.url == "https://acme.gorgias.com/api/customers/merge?source_id=5&target_id=9"
    assert sent(merge) == {"name": "Jane Doe"}
    nameless = plan.next_step([answer(read, 200, {"id": 9, "name": None, "email": "jane@example.com"})])
    assert nameless is not None and sent(nameless) == {"email": "jane@example.com"}
    with pytest.raises(PlanError, match="no name or email to send as the merge's body"):
        plan.next_step([answer(read, 200, {"id": 9, "name": None, "email": None})])


def test_a_merge_with_fields_sends_them_then_sets_them_on_the_kept_customer() -> None:
    plan = plan_of(one("merge_customers", {"source_id": 5, "target_id": 9, "note": "VIP", "name": "Jane"}))
    seen = run(plan, {})
    assert [(s.request.method, urlsplit(s.request.url).path, sent(s), s.final) for s in seen] == [
        ("PUT", "/api/customers/merge", {"note": "VIP", "name": "Jane"}, False),
        ("PUT", "/api/customers/9", {"note": "VIP", "name": "Jane"}, True)]


def test_an_upsert_keyed_by_external_id_alone_updates_and_needs_contact_data_only_to_create() -> None:
    plan = plan_of(one("upsert_customer", {"external_id": "crm-1", "note": "VIP"}))  # no email, no phone
    look = plan.next_step([])
    assert look is not None
    update = plan.next_step([answer(look, 200, {"data": [{"id": 3, "external_id": "crm-1"}]})])
    assert update is not None and update.request.method == "PUT" and sent(update) == {"external_id": "crm-1",
                                                                                        "note": "VIP"}
    with pytest.raises(PlanError, match=r"no customer has external_id 'crm-1', and creating one needs an email "
                                        r"or a phone"):
        plan.next_step([answer(look, 200, {"data": []})])
