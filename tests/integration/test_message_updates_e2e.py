"""update_ticket_message end to end (real broker, sandbox process): the message is read first and sent back
as it is, so an agent's email reply stays an email reply from that agent and nobody is emailed; only a
record asking to send, in mode send, lets Gorgias send it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.kafka_io import publish, read_json
from tests.support.processes import gorgias
from tests.support.scenario import Scenario, new_ticket, templated, wait_committed

pytestmark = pytest.mark.integration

STAMP = "2026-01-02T03:04:05.000000+00:00"


def email_reply(s: Scenario, ticket: int) -> dict[str, Any]:
    reply: dict[str, Any] = gorgias(s.sandbox, "POST", f"/api/tickets/{ticket}/messages", {
        "channel": "email", "via": "helpdesk", "from_agent": True, "sender": {"email": "agent@acme.com"},
        "receiver": {"email": "t@example.com"}, "body_text": "It ships on Tusday.", "sent_datetime": STAMP,
        "source": {"type": "email", "from": {"address": "agent@acme.com", "name": "Agent"},
                   "to": [{"address": "t@example.com"}]},
    })
    return reply


async def test_a_corrected_email_reply_stays_what_it_was_and_nobody_is_emailed(
        scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    ticket = new_ticket(s)
    reply = email_reply(s, ticket)
    await publish(s.bootstrap, s.source, [{"ticket_id": ticket, "message_id": reply["id"],
                                           "body_text": "It ships on Tuesday."}])
    await run_worker(s.config(templated(s, "update_ticket_message")))
    await wait_committed(s, 1)
    event = (await read_json(s.bootstrap, s.responses, 1, timeout=10))[0]
    assert event["outcome"] == "delivered" and [st["method"] for st in event["steps"]] == ["GET", "PUT"]
    state = s.sandbox.state()
    message = next(m for t in state["tickets"] if t["id"] == ticket for m in t["messages"] if m["id"] == reply["id"])
    assert message["body_text"] == "It ships on Tuesday."
    assert (message["channel"], message["via"], message["from_agent"]) == ("email", "helpdesk", True)
    assert message["sender"]["email"] == "agent@acme.com" and message["receiver"]["email"] == "t@example.com"
    assert message["sent_datetime"] == STAMP and state["emailed"] == []


async def test_in_send_mode_a_record_asking_to_send_is_sent(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    ticket = new_ticket(s)
    reply = email_reply(s, ticket)
    await publish(s.bootstrap, s.source, [
        {"ticket_id": ticket, "message_id": reply["id"], "body_text": "Typo fixed."},
        {"ticket_id": ticket, "message_id": reply["id"], "body_text": "It ships on Tuesday.", "send": True},
    ])
    await run_worker(s.config(templated(s, "update_ticket_message", {"mode": "send"})))
    await wait_committed(s, 2)
    emailed = s.sandbox.state()["emailed"]
    assert [(e["message_id"], e["to"]) for e in emailed] == [(reply["id"], ["t@example.com"])]
