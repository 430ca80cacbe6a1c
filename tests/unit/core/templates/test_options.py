"""template_options (fields, mapping, external_id, url_attributes, dedupe) and refusals at start."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.templates import body, destination, group, one, record, stamp
from worker.core.config.worker_config import format_validation_error
from worker.core.requests.render_error import RenderError
from worker.core.templates import renderer_for


def start(template: str, options: dict[str, Any] | None = None, batching: dict[str, Any] | None = None,
          **endpoint: Any) -> str:
    """Why the destination cannot start: its config (the options' shape) or its template (what they name)."""
    try:
        dest = destination(template, options, batching, **endpoint)
    except ValidationError as exc:
        return "\n".join(format_validation_error(exc))
    with pytest.raises(ValueError) as caught:
        renderer_for(dest)
    return str(caught.value)


def test_fields_are_constants_merged_into_the_body() -> None:
    got = body(one("create_ticket", {"body_text": "x", "customer_email": "a@b.co", "channel": "chat"},
                   {"fields": {"channel": "email", "messages[].channel": "email", "meta.source": "nexla",
                               "priority": "high", "messages[].receiver.email": "support@acme.com"}}))
    assert got["channel"] == "email" and got["messages"][0]["channel"] == "email"
    assert got["messages"][0]["source"] == {"type": "email", "from": {"address": "a@b.co"},
                                            "to": [{"address": "support@acme.com"}]}
    assert got["meta"] == {"source": "nexla"} and got["priority"] == "high"


def test_mapping_reads_other_attributes_and_keeps_converters() -> None:
    options = {"mapping": {"customer.email": "contact.email", "subject": ["title", "summary"],
                           "tags": "labels", "messages[].body_text": "text"}}
    data = {"contact": {"email": "c@x.io"}, "summary": "S", "labels": "a,b", "text": "hello",
            "customer_email": "ignored@x.io"}
    got = body(one("create_ticket", data, options))
    assert got["customer"] == {"email": "c@x.io"}
    assert got["subject"] == "S"
    assert got["tags"] == [{"name": "a"}, {"name": "b"}]
    assert got["messages"][0]["body_text"] == "hello"


def test_mapping_null_leaves_a_field_out() -> None:
    got = body(one("update_ticket", {"ticket_id": 1, "status": "closed", "priority": "low"},
                   {"mapping": {"priority": None}}))
    assert got == {"status": "closed"}


def test_mapping_a_copied_field_reads_only_the_new_attribute() -> None:
    got = body(one("update_ticket", {"ticket_id": 1, "status": "open", "state": "closed"},
                   {"mapping": {"status": "state"}}))
    assert got == {"status": "closed"}


def test_external_id_from_an_attribute_or_not_stamped() -> None:
    got = body(one("create_customer", {"email": "a@b.co", "crm_id": 42}, {"external_id": {"from": "crm_id"}}))
    assert got["external_id"] == "42"
    got = body(one("create_customer", {"email": "a@b.co", "external_id": "own", "crm_id": 42},
                   {"external_id": {"from": "crm_id"}}))
    assert got["external_id"] == "own"  # the record's own is kept
    with pytest.raises(RenderError, match=r"external_id: the record has no attribute crm_id"):
        one("create_customer", {"email": "a@b.co"}, {"external_id": {"from": "crm_id"}})
    got = body(one("create_customer", {"email": "a@b.co"}, {"external_id": {"stamp": False}}))
    assert "external_id" not in got


def test_the_default_external_id_is_stable_and_per_record() -> None:
    first = body(one("create_customer", {"email": "a@b.co"}, offset=7))["external_id"]
    again = body(one("create_customer", {"email": "a@b.co"}, offset=7))["external_id"]
    other = body(one("create_customer", {"email": "a@b.co"}, offset=8))["external_id"]
    assert first == again == stamp(7) and other == stamp(8) != first
    assert first.startswith("nx-") and len(first) == 27


def test_url_attributes_rename_placeholders_and_batching_must_use_the_new_name() -> None:
    options = {"url_attributes": {"ticket_id": "ticket.id"}}
    request = one("add_ticket_tags", {"ticket": {"id": 77}, "tags": ["a"]}, options)
    assert request.url == "https://acme.gorgias.com/api/tickets/77/tags"
    batched = group("add_ticket_tags", [{"ticket": {"id": 7}, "tag": "a"}, {"ticket": {"id": 7}, "tag": "b"}],
                    {"algorithm": "by_attribute", "attributes": ["ticket.id"]},
                    {"url_attributes": {"ticket_id": "ticket.id"}})
    assert body(batched) == {"names": ["a", "b"]}


@pytest.mark.parametrize(("options", "expected"), [
    ({"bogus": 1}, "endpoint.template_options.bogus: is not a known setting"),
    ({"fields": {"priority": "urgent"}},
     "endpoint.template_options.fields.priority: must be one of critical, high, normal, low (got 'urgent')"),
    ({"fields": {"subjct": "x"}}, "endpoint.template_options.fields.subjct: subjct is not a field of POST "
                                  "/api/tickets bodies"),
    ({"mapping": {"customer.emial": "x"}}, "endpoint.template_options.mapping.customer.emial: customer.emial is "
                                           "not a field"),
    ({"mapping": {"subject": 3}}, "endpoint.template_options.mapping.subject: must be a record attribute path"),
    ({"mapping": {"subject": ["a", 3]}}, "endpoint.template_options.mapping.subject: must be a record attribute"),
    ({"fields": ["channel"]}, "endpoint.template_options.fields: must map body fields to constant values"),
    ({"url_attributes": {"ticket_id": 7}}, "endpoint.template_options.url_attributes.ticket_id: must be a record "
                                           "attribute path, got 7"),
    ({"external_id": {"from": "a..b"}}, "endpoint.template_options.external_id.from: 'a..b' is not a dotted"),
    ({"external_id": {"stamp": "maybe"}}, "endpoint.template_options.external_id.stamp: input should be a valid "
                                          "boolean"),
    ({"mode": "email"}, "endpoint.template_options.mode: must be one of 'import' or 'send' (got 'email')"),
    ({"mapping": {"subject": "a..b"}}, "endpoint.template_options.mapping.subject: 'a..b' is not a dotted"),
    ({"mapping": ["subject"]}, "endpoint.template_options.mapping: must map body fields"),
    ({"external_id": {"form": "x"}}, "endpoint.template_options.external_id.form: is not a known setting"),
    ({"url_attributes": {"id": "x"}}, "endpoint.template_options.url_attributes.id: not a placeholder"),
    ({"dedupe": {"lookup_before_create": "sometimes"}},
     "endpoint.template_options.dedupe.lookup_before_create: must be one of 'replayed', 'always' or 'never' "
     "(got 'sometimes')"),
])
def test_bad_options_fail_at_start_naming_the_option(options: dict[str, Any], expected: str) -> None:
    assert expected in start("create_ticket", options)


def test_options_that_do_not_apply_to_the_template() -> None:
    assert "endpoint.template_options.external_id: template update_ticket sends no external_id" in start(
        "update_ticket", {"external_id": {"from": "x"}})
    assert "endpoint.template_options.dedupe: template update_ticket does not create anything" in start(
        "update_ticket", {"dedupe": {"lookup_before_create": "always"}})


def test_method_or_url_next_to_a_template_is_refused() -> None:
    assert start("create_ticket", method="POST").startswith("endpoint.method: template create_ticket sets the method")
    assert start("create_ticket", url="https://{domain}.gorgias.com/api/x").startswith("endpoint.url: template")


def test_form_content_is_refused() -> None:
    assert start("create_tag", content_format="form").startswith(
        "endpoint.content_format: template create_tag sends JSON")


def test_batching_a_template_without_a_batch_form_is_refused() -> None:
    assert start("delete_ticket", batching={"algorithm": "by_attribute", "attributes": ["ticket_id"]}).startswith(
        "batching.enabled: template delete_ticket sends one record per call (Gorgias deletes one ticket per call")


def test_batched_tags_need_ticket_id_in_the_grouping() -> None:
    reason = start("add_ticket_tags", batching={"algorithm": "by_attribute", "attributes": ["customer_id"]})
    assert reason.startswith("batching.attributes: batched template add_ticket_tags makes one call per ticket_id, "
                             "so batching.attributes must include ticket_id")
    assert "ticket_id" in start("add_ticket_tags", batching={"algorithm": "tumbling_window"})


def test_batched_create_ticket_needs_a_conversation_key_and_at_most_500_records() -> None:
    assert start("create_ticket", batching={"algorithm": "arrival_order"}).startswith(
        "batching.attributes: batched template create_ticket turns a group into one ticket")
    assert start("create_ticket", batching={"algorithm": "by_attribute", "attributes": ["c"], "batch_size": 501}) == (
        "batching.batch_size: template create_ticket carries at most 500 records in one call (Gorgias' limit); "
        "set batch_size <= 500 (got 501)")


def test_wrap_key_is_refused_with_templates() -> None:
    assert start("delete_customers", batching={"algorithm": "arrival_order", "wrap_key": "x"}).startswith(
        "batching.wrap_key: template delete_customers shapes its own batch body")


def test_exclude_attributes_apply_before_the_template_reads_the_record() -> None:
    renderer = renderer_for(destination("update_ticket", exclude_attributes=["priority"]))
    request = renderer.render_one(renderer.prepare(record({"ticket_id": 1, "status": "open", "priority": "low"})))
    assert body(request) == {"status": "open"}


def test_check_templates_lists_every_destination_that_cannot_start() -> None:
    from worker.core.config.worker_config import parse_config
    from worker.core.templates import check_templates, list_templates

    def doc(name: str, endpoint: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "source_topics": ["t"], "endpoint": endpoint,
                "credential": {"domain": "acme", "username": "a@acme.com", "api_key_env": "K"}}

    config = parse_config({"destinations": [
        doc("fine", {"template": "create_tag"}),
        doc("manual", {"method": "POST", "url": "https://{domain}.gorgias.com/api/tags"}),
        doc("typo", {"template": "create_tags"}),
        doc("bad-option", {"template": "update_ticket", "template_options": {"fields": {"status": "done"}}}),
    ]})
    assert check_templates(config) == [
        "destinations[2].endpoint.template: unknown template 'create_tags' (known: "
        + ", ".join(t.name for t in list_templates()) + "); did you mean 'create_tag'?",
        "destinations[3].endpoint.template_options.fields.status: must be one of open, closed (got 'done')",
    ]
