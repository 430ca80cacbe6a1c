"""send / import mode (nobody is emailed by surprise), and bodies real Gorgias accepts."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.templates import SENT, body, destination, group, one, record
from worker.core.config.worker_config import format_validation_error
from worker.core.records.record import POSSIBLY_DELIVERED, REPLAY_HEADER
from worker.core.requests.render_error import RenderError
from worker.core.requests.request import RenderedRequest
from worker.core.templates import renderer_for

REPLY = {"ticket_id": 1, "body_text": "It shipped.", "from_agent": True, "channel": "email",
         "customer_email": "jane@example.com", "sender_email": "support@acme.com"}


def render(template: str, data: dict[str, Any], options: dict[str, Any] | None = None,
           **extra: Any) -> RenderedRequest:
    renderer = renderer_for(destination(template, options))
    rec = record(data)
    if "headers" in extra:
        rec.headers = extra["headers"]
    if "flag" in extra:
        rec.extra[POSSIBLY_DELIVERED] = True
    return renderer.render_one(renderer.prepare(rec))


# --------------------------------------------------------------------------------------------------
# send / import


def test_by_default_messages_are_imported_so_nobody_is_emailed() -> None:
    request = one("add_ticket_message", REPLY)
    assert body(request)["sent_datetime"] == SENT  # the Kafka record's timestamp
    assert request.notes == ()
    own = body(one("add_ticket_message", {**REPLY, "created_datetime": "2024-01-02T03:04:05+00:00"}))
    assert own["sent_datetime"] == "2024-01-02T03:04:05+00:00"
    kept = body(one("add_ticket_message", {**REPLY, "sent_datetime": "2023-01-01T00:00:00+00:00"}))
    assert kept["sent_datetime"] == "2023-01-01T00:00:00+00:00"


def test_send_mode_leaves_outgoing_messages_unsent_and_the_preview_says_who_is_emailed() -> None:
    request = one("add_ticket_message", REPLY, {"mode": "send"})
    assert "sent_datetime" not in body(request)
    assert request.notes == ("emails jane@example.com: the message has no sent_datetime (mode: send)",)
    incoming = one("add_ticket_message", {"ticket_id": 1, "body_text": "hi", "customer_email": "c@x.io"},
                   {"mode": "send"})
    assert incoming.notes == ()  # a message from the customer is not emailed to anyone


def test_send_mode_still_imports_replays_and_records_that_may_have_been_delivered() -> None:
    replayed = render("add_ticket_message", REPLY, {"mode": "send"}, headers=((REPLAY_HEADER, b"dlq/0/5"),))
    assert body(replayed)["sent_datetime"] == SENT and replayed.notes == ()
    again = render("add_ticket_message", REPLY, {"mode": "send"}, flag=True)
    assert body(again)["sent_datetime"] == SENT


def test_create_ticket_import_stamps_every_message_of_a_conversation() -> None:
    rows: list[dict[str, Any]] = [{"conversation_id": "c", "body_text": "1", "customer_email": "a@b.co"},
                                  {"conversation_id": "c", "body_text": "2", "customer_email": "a@b.co",
                                   "from_agent": True, "message_created_datetime": "2024-05-01T10:00:00+00:00"}]
    got = body(group("create_ticket", rows, {"algorithm": "by_attribute", "attributes": ["conversation_id"]}))
    assert [m["sent_datetime"] for m in got["messages"]] == [SENT, "2024-05-01T10:00:00+00:00"]
    sent = group("create_ticket", rows, {"algorithm": "by_attribute", "attributes": ["conversation_id"]},
                 {"mode": "send"})
    assert sent.notes == ("emails a@b.co: messages[1] has no sent_datetime (mode: send)",)


def test_surveys_are_not_sent_unless_asked() -> None:
    row = {"ticket_id": 1, "customer_id": 2, "should_send_datetime": "2024-01-01T00:00:00+00:00"}
    assert body(one("create_satisfaction_survey", row))["should_send_datetime"] is None
    asked = one("create_satisfaction_survey", row, {"mode": "send"})
    assert body(asked)["should_send_datetime"] == "2024-01-01T00:00:00+00:00"
    assert asked.notes == ("Gorgias may send the satisfaction survey of ticket 1 to customer 2",)


def test_mode_is_checked_at_start() -> None:
    with pytest.raises(ValidationError) as caught:
        destination("add_ticket_message", {"mode": "email"})
    assert format_validation_error(caught.value) == [
        "endpoint.template_options.mode: must be one of 'import' or 'send' (got 'email')"]
    with pytest.raises(ValueError, match=r"template_options.mode: template update_ticket creates nothing"):
        renderer_for(destination("update_ticket", {"mode": "send"}))


# --------------------------------------------------------------------------------------------------
# bodies


def test_email_messages_carry_a_source_built_from_sender_and_receiver() -> None:
    got = body(one("add_ticket_message", REPLY))
    assert got["source"] == {"type": "email", "from": {"address": "support@acme.com"},
                             "to": [{"address": "jane@example.com"}]}
    own = {"type": "email", "from": {"address": "x@y.co"}, "to": []}
    assert body(one("add_ticket_message", {**REPLY, "source": own}))["source"] == own
    assert "source" not in body(one("add_ticket_message", {**REPLY, "channel": "api"}))
    with pytest.raises(RenderError, match=r"add_ticket_message: source: required for an email message.*no "
                                          r"receiver_email \(nor customer_email"):
        one("add_ticket_message", {"ticket_id": 1, "body_text": "x", "from_agent": True, "channel": "email",
                                   "sender_email": "support@acme.com"})


def test_customers_carry_channels_and_a_name() -> None:
    got = body(one("create_customer", {"email": "j@x.io", "firstname": "Jane", "lastname": "Doe"}))
    assert got["name"] == "Jane Doe" and "firstname" not in got and "lastname" not in got
    assert got["channels"] == [{"type": "email", "address": "j@x.io", "preferred": True}]
    phone = body(one("create_customer", {"name": "Bo", "phone": "+331234"}))
    assert phone["channels"] == [{"type": "phone", "address": "+331234", "preferred": True}]
    with pytest.raises(RenderError, match=r"create_customer: channels: required: a customer needs an email or a phone"):
        one("create_customer", {"name": "Nobody"})
    update = body(one("update_customer", {"customer_id": 1, "lastname": "Doe", "note": "n"}))
    assert update == {"note": "n", "name": "Doe"}  # an update without email or phone leaves channels alone
    moved = body(one("update_customer", {"customer_id": 1, "email": "new@x.io"}))
    assert moved == {"email": "new@x.io"}  # not channels: [that email], which could drop the customer's others


def test_customer_data_must_be_an_object() -> None:
    with pytest.raises(RenderError, match=r"set_customer_data: data: must be an object \(got an array\)"):
        one("set_customer_data", {"customer_id": 1, "data": [1, 2]})


# --------------------------------------------------------------------------------------------------
# new templates' checks


def test_single_field_templates_need_a_scalar_value() -> None:
    with pytest.raises(RenderError, match=r"set_ticket_field: value: required \(record attribute value: absent\)"):
        one("set_ticket_field", {"ticket_id": 1, "field_id": 2})
    with pytest.raises(RenderError, match=r"set_customer_field: body: must be a string, an integer, a boolean, "
                                          r"or null to clear it \(got an object\)"):
        one("set_customer_field", {"customer_id": 1, "field_id": 2, "value": {"a": 1}})
    with pytest.raises(RenderError, match=r"set_ticket_field: body: 12.5 has decimals: the single-value route takes "
                                          r"a string, an integer or a boolean; set it with set_ticket_custom_fields"):
        one("set_ticket_field", {"ticket_id": 1, "field_id": 3, "value": 12.5})
    assert one("set_ticket_field", {"ticket_id": 1, "field_id": 3, "value": 12.0}).body == b"12"
    assert one("set_ticket_field", {"ticket_id": 1, "field_id": 4, "value": True}).plan is None


def test_a_null_value_clears_the_field_with_a_delete() -> None:
    request = one("set_ticket_field", {"ticket_id": 1, "field_id": 2, "value": None})
    assert request.plan is not None
    step = request.plan.next_step([])
    assert step is not None and step.final
    assert (step.request.method, step.request.url, step.request.body) == (
        "DELETE", "https://acme.gorgias.com/api/tickets/1/custom-fields/2", None)


def test_upsert_needs_an_identity_and_a_group_of_one_customer() -> None:
    with pytest.raises(RenderError, match=r"upsert_customer: email: required: upsert_customer looks the customer up"):
        one("upsert_customer", {"name": "Jane", "phone": "+331234"})
    rows = [{"k": 1, "email": "a@x.io"}, {"k": 1, "email": "b@x.io"}]
    with pytest.raises(RenderError, match=r"a group mixes customers"):
        group("upsert_customer", rows, {"algorithm": "by_attribute", "attributes": ["k"]})


def test_ticket_job_checks_its_change_and_refuses_a_group_asking_different_ones() -> None:
    with pytest.raises(RenderError, match=r"ticket_job: params.updates: required for an updateTicket job"):
        one("ticket_job", {"ticket_id": 1})
    with pytest.raises(RenderError, match=r"ticket_job: params.macro_id: required for an applyMacro job"):
        one("ticket_job", {"ticket_id": 1, "job_type": "applyMacro"})
    macro = body(one("ticket_job", {"ticket_ids": "1, 2", "job_type": "applyMacro", "macro_id": "7",
                                    "apply_and_close": "yes"}))
    assert macro == {"type": "applyMacro", "params": {"ticket_ids": [1, 2], "macro_id": 7, "apply_and_close": True}}
    rows = [{"k": 1, "ticket_id": 1, "status": "closed"}, {"k": 1, "ticket_id": 2, "status": "open"}]
    with pytest.raises(RenderError, match=r"the records of a group ask different changes"):
        group("ticket_job", rows, {"algorithm": "by_attribute", "attributes": ["k"]})


def test_grouped_upserts_and_jobs_must_be_grouped_by_what_they_share() -> None:
    with pytest.raises(ValueError, match=r"batched template upsert_customer turns a group into one customer's write, "
                                         r"so records must be grouped by the customer's lookup key: .*\[email\]"):
        renderer_for(destination("upsert_customer", batching={"algorithm": "arrival_order"}))
    with pytest.raises(ValueError, match=r"ticket_job turns a group into one job, .*attributes: \[status\]"):
        renderer_for(destination("ticket_job", batching={"algorithm": "arrival_order"}))


def test_job_updates_take_the_form_gorgias_own_helpdesk_sends() -> None:
    flat = body(one("ticket_job", {"ticket_id": 1, "status": "closed", "tags": "late, vip", "assignee_team_id": "4"}))
    assert flat["params"]["updates"] == {"status": "closed", "tags": ["late", "vip"], "assignee_team_id": 4}
    given = body(one("ticket_job", {"ticket_id": 1, "updates": {"tags": [{"name": "vip"}, "late"],
                                                               "assignee_team": {"id": 4}}}))
    assert given["params"]["updates"] == {"tags": ["vip", "late"], "assignee_team_id": 4}


@pytest.mark.parametrize(("template", "data"), [
    ("ticket_job", {"ticket_id": 1, "status": "closed", "custom_fields": [{"id": 1, "value": "x"}]}),
    ("ticket_job", {"ticket_id": 1, "updates": {"custom_fields": [{"id": 1, "value": "x"}]}}),
    ("update_ticket", {"ticket_id": 1, "status": "closed", "custom_fields": [{"id": 1, "value": "x"}]}),
])
def test_custom_fields_never_ride_along_a_ticket_update_or_a_job(template: str, data: dict[str, Any]) -> None:
    with pytest.raises(RenderError, match=r"custom_fields: not sent: Gorgias would replace every custom-field "
                                          r"value of the ticket.*set_ticket_custom_fields"):
        one(template, data)


def test_job_polling_is_an_option_of_job_templates_only() -> None:
    from worker.core.requests.jobs import JobPolling
    from worker.core.templates import configured_for

    dest = destination("ticket_job", {"job": {"first_poll_s": 5, "max_wait_s": 90}},
                       batching={"algorithm": "by_attribute", "attributes": ["status"]})
    assert configured_for(dest).job_polling == JobPolling(5, 60, 90)
    with pytest.raises(ValueError, match=r"template_options.job: template update_ticket creates no Gorgias job"):
        renderer_for(destination("update_ticket", {"job": {"max_wait_s": 90}}))


def test_a_job_wait_shorter_than_the_first_pause_is_refused_naming_the_option() -> None:
    with pytest.raises(ValidationError, match=r"max_wait_s \(1\) must be at least first_poll_s \(2\)"):
        destination("ticket_job", {"job": {"max_wait_s": 1}}, batching={"algorithm": "by_attribute",
                                                                       "attributes": ["status"]})
