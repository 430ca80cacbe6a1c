"""Satisfaction surveys, users and jobs, and GET /api/account."""

from __future__ import annotations

from tests.unit.sandbox.conftest import OBSERVER, Api, incoming_ticket


async def test_survey_one_per_ticket(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("POST", "/api/satisfaction-surveys", {"customer_id": 1, "ticket_id": 1, "score": 5})
    assert r.status == 201
    assert r.json["uri"] == "/api/satisfaction-surveys/1/" and r.json["scored_datetime"] is not None
    r = await api.call("POST", "/api/satisfaction-surveys", {"customer_id": 1, "ticket_id": 1})
    assert r.status == 409 and r.json == {"error": {"msg": "The resource already exists."}}
    assert (await api.call("GET", "/api/tickets/1")).json["satisfaction_survey"]["score"] == 5


async def test_survey_validation_and_update(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("POST", "/api/satisfaction-surveys", {"customer_id": 9, "ticket_id": 9, "score": 6})
    assert r.status == 400
    assert r.json["error"]["data"] == {
        "score": ["Must be greater than or equal to 1 and less than or equal to 5."]}
    r = await api.call("POST", "/api/satisfaction-surveys", {"customer_id": 9, "ticket_id": 9})
    assert r.json["error"]["data"] == {"ticket_id": ["Ticket not found."], "customer_id": ["Customer not found."]}
    await api.call("POST", "/api/satisfaction-surveys", {"customer_id": 1, "ticket_id": 1,
                                                         "should_send_datetime": None})
    r = await api.call("PUT", "/api/satisfaction-surveys/1", {"score": 3, "body_text": "ok"})
    assert r.status == 202 and (r.json["score"], r.json["body_text"]) == (3, "ok")
    assert (await api.call("PUT", "/api/satisfaction-surveys/2", {"score": 3})).status == 404


async def test_users(api: Api) -> None:
    r = await api.call("POST", "/api/users", {"email": "new@acme.com", "name": "New Agent", "role": {"name": "agent"}})
    assert r.status == 201 and r.json["role"] == {"name": "agent"} and r.json["firstname"] == "New"
    uid = r.json["id"]
    assert (await api.call("POST", "/api/users", {"email": "new@acme.com"})).status == 409
    r = await api.call("POST", "/api/users", {"email": "x@acme.com", "channels": [], "roles": []})
    assert r.status == 400 and r.json["error"]["data"] == {"channels": ["Unknown field."], "roles": ["Unknown field."]}
    r = await api.call("PUT", f"/api/users/{uid}", {"bio": "hi", "country": "FR"})
    assert r.status == 202 and r.json["bio"] == "hi"
    r = await api.call("PUT", f"/api/users/{uid}", {"email": "changed@acme.com"})
    assert r.status == 400 and "password_confirmation" in r.json["error"]["data"]
    r = await api.call("PUT", "/api/users/0", {"bio": "me"})
    assert r.status == 202 and r.json["email"] == "agent@acme.com"
    assert (await api.call("GET", "/api/users/0")).json["bio"] == "me"
    assert (await api.call("DELETE", f"/api/users/{uid}")).status == 204
    assert (await api.call("GET", f"/api/users/{uid}")).status == 404
    assert (await api.call("DELETE", "/api/users/0")).status == 400


async def test_jobs_are_recorded(api: Api) -> None:
    r = await api.call("POST", "/api/jobs", {"type": "exportTicket", "params": {"view_id": 3}})
    assert r.status == 201
    job = r.json
    assert (job["id"], job["uri"], job["status"], job["type"]) == (1, "/api/jobs/1/", "pending", "exportTicket")
    r = await api.call("POST", "/api/jobs", {"type": "explode", "params": {}})
    assert r.status == 400
    r = await api.call("PUT", "/api/jobs/1", {"meta": {"k": 1}})
    assert r.status == 202 and r.json["meta"] == {"k": 1}
    assert (await api.call("DELETE", "/api/jobs/1")).status == 204
    r = await api.call("GET", "/api/jobs/1")
    assert r.status == 202 and r.json["status"] == "canceled"
    assert [j["id"] for j in (await api.state())["jobs"]] == [1]


async def test_account_probe(api: Api) -> None:
    assert (await api.call("GET", "/api/account")).json["domain"] == "acme"
    assert (await api.call("GET", "/api/account", auth=None)).status == 401


async def test_observer_can_read_but_not_write(api: Api) -> None:
    assert (await api.call("GET", "/api/tickets", auth=OBSERVER)).status == 200
    r = await api.call("POST", "/api/tags", {"name": "x"}, auth=OBSERVER)
    assert r.status == 403 and r.json == {"error": {"msg": "Forbidden."}}
    assert (await api.state())["tags"] == []


async def test_update_ticket_job_applies_the_updates(api: Api) -> None:
    for _ in range(3):
        await api.call("POST", "/api/tickets", incoming_ticket())
    updates = {"status": "closed", "priority": "high"}
    body = {"type": "updateTicket", "params": {"ticket_ids": [1, 3], "updates": updates}}
    r = await api.call("POST", "/api/jobs", body)
    assert r.status == 201 and r.json["status"] == "done" and r.json["ended_datetime"] is not None
    tickets = {t["id"]: t for t in (await api.state())["tickets"]}
    assert [(tickets[i]["status"], tickets[i]["priority"]) for i in (1, 2, 3)] == [
        ("closed", "high"), ("open", "normal"), ("closed", "high")]


async def test_delete_ticket_job_deletes_and_reports_missing_ids(api: Api) -> None:
    for _ in range(2):
        await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("POST", "/api/jobs", {"type": "deleteTicket", "params": {"ticket_ids": [2, 9]}})
    assert r.status == 201 and r.json["status"] == "errored" and r.json["info"] == {"missing_ticket_ids": [9]}
    assert [t["id"] for t in (await api.state())["tickets"]] == [1]


async def test_apply_macro_job_records_and_can_close(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    body = {"type": "applyMacro", "params": {"ticket_ids": [1], "macro_id": 12, "apply_and_close": True}}
    assert (await api.call("POST", "/api/jobs", body)).json["status"] == "done"
    state = await api.state()
    assert state["applied_macros"] == [{"job_id": 1, "ticket_id": 1, "macro_id": 12}]
    assert state["tickets"][0]["status"] == "closed"


async def test_ticket_job_params_are_strict(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    cases = [
        {"type": "updateTicket", "params": {"ticket_ids": [1]}},
        {"type": "updateTicket", "params": {"ticket_ids": [1], "updates": {"status": "gone"}}},
        {"type": "updateTicket", "params": {"ticket_ids": [1], "updates": {"assignee_user": {"id": 99}}}},
        {"type": "deleteTicket", "params": {"ticket_ids": []}},
        {"type": "deleteTicket", "params": {"view_id": 4}},
        {"type": "applyMacro", "params": {"ticket_ids": [1]}},
    ]
    for body in cases:
        r = await api.call("POST", "/api/jobs", body)
        assert r.status == 400, body
    state = await api.state()
    assert state["jobs"] == [] and state["tickets"][0]["status"] == "open"


async def test_scheduled_ticket_job_does_not_run(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("POST", "/api/jobs", {"type": "deleteTicket", "params": {"ticket_ids": [1]},
                                             "scheduled_datetime": "2030-01-01T00:00:00"})
    assert r.json["status"] == "scheduled"
    assert len((await api.state())["tickets"]) == 1
