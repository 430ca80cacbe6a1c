"""Satisfaction surveys: one per ticket (a second one is 409, INF choice between 409 and 400)."""

from __future__ import annotations

from typing import Any

from gorgias_sandbox.errors import conflict, invalid
from gorgias_sandbox.inputs import checked, page, require_found
from gorgias_sandbox.routing import Call, Reply, Route
from gorgias_sandbox.schemas import SURVEY
from gorgias_sandbox.state import AccountState


def _reference_errors(account: AccountState, values: dict[str, Any]) -> dict[str, list[str]]:
    errors = {}
    if "ticket_id" in values and values["ticket_id"] not in account.tickets:
        errors["ticket_id"] = ["Ticket not found."]
    if "customer_id" in values and values["customer_id"] not in account.customers:
        errors["customer_id"] = ["Customer not found."]
    return errors


def create_survey(call: Call) -> Reply:
    """``POST /api/satisfaction-surveys`` → 201 SatisfactionSurvey; 409 if the ticket already has one."""
    account = call.account
    values = checked(call.body, SURVEY, "Failed to create satisfaction survey")
    errors = _reference_errors(account, values)
    if errors:
        raise invalid("Failed to create satisfaction survey", errors)
    if values["ticket_id"] in account.survey_by_ticket:
        raise conflict()
    sid = account.next_id("survey")
    survey = {"id": sid, "uri": f"/api/satisfaction-surveys/{sid}/", "score": None, "body_text": None,
              "meta": None, "created_datetime": call.now, "scored_datetime": None, "sent_datetime": None,
              "should_send_datetime": None}
    survey.update(values)
    if values.get("score") is not None and "scored_datetime" not in values:
        survey["scored_datetime"] = call.now  # INF
    account.surveys[sid] = survey
    account.survey_by_ticket[values["ticket_id"]] = sid
    return Reply(201, survey)


def update_survey(call: Call) -> Reply:
    """``PUT /api/satisfaction-surveys/{id}`` → 202 (partial, INF); moving to a ticket with a survey is 409."""
    account = call.account
    survey = require_found(account.surveys.get(call.params[0]))
    values = checked(call.body, SURVEY, "Failed to update satisfaction survey", require=False)
    errors = _reference_errors(account, values)
    if errors:
        raise invalid("Failed to update satisfaction survey", errors)
    new_ticket = values.get("ticket_id", survey["ticket_id"])
    if new_ticket != survey["ticket_id"]:
        if new_ticket in account.survey_by_ticket:
            raise conflict()
        del account.survey_by_ticket[survey["ticket_id"]]
        account.survey_by_ticket[new_ticket] = survey["id"]
    if values.get("score") is not None and values["score"] != survey["score"] and "scored_datetime" not in values:
        survey["scored_datetime"] = call.now
    survey.update(values)
    return Reply(202, survey)


def get_survey(call: Call) -> Reply:
    """``GET /api/satisfaction-surveys/{id}``."""
    return Reply(200, require_found(call.account.surveys.get(call.params[0])))


def list_surveys(call: Call) -> Reply:
    """``GET /api/satisfaction-surveys`` (optional ``ticket_id=``)."""
    ticket_id = call.query.get("ticket_id")
    items = [s for s in call.account.surveys.values() if ticket_id is None or str(s["ticket_id"]) == ticket_id]
    return Reply(200, page(call.query, call.path, items, filters=("ticket_id",)))


ROUTES = [
    Route("POST", "/api/satisfaction-surveys", create_survey),
    Route("GET", "/api/satisfaction-surveys", list_surveys),
    Route("PUT", "/api/satisfaction-surveys/{id}", update_survey),
    Route("GET", "/api/satisfaction-surveys/{id}", get_survey),
]
