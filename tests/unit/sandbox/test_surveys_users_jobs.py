"""Satisfaction surveys, users and jobs, and GET /api/account."""

from __future__ import annotations

from typing import Any

from gorgias_sandbox.settings import SandboxSettings
from tests.support.sandbox_api import OBSERVER, Api, FakeClock, MakeApi, incoming_ticket


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


async def _tickets(api: Api, n: int) -> None:
    for _ in range(n):
        await api.call("POST", "/api/tickets", incoming_ticket())


async def _job(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.call("POST", "/api/jobs", body)
    assert r.status == 201, r.json
    return r.json  # type: ignore[no-any-return]


async def _status(api: Api, jid: int) -> dict[str, Any]:
    r = await api.call("GET", f"/api/jobs/{jid}")
    assert r.status == 202  # sic: the status Gorgias' spec declares for reading a job
    return r.json  # type: ignore[no-any-return]


async def test_a_ticket_job_runs_in_the_background_for_the_configured_time(
        make_api: MakeApi, clock: FakeClock) -> None:
    api = await make_api(SandboxSettings(rate_limit="off", job_duration_s=30))
    await _tickets(api, 3)
    body = {"type": "updateTicket", "params": {"ticket_ids": [1, 3], "updates": {"status": "closed",
                                                                                "priority": "high"}}}
    job = await _job(api, body)
    assert (job["status"], job["started_datetime"], job["ended_datetime"]) == ("pending", None, None)
    running = await _status(api, job["id"])
    assert running["status"] == "running" and running["started_datetime"] is not None
    assert {t["status"] for t in (await api.state())["tickets"]} == {"open"}  # nothing applied yet
    clock.advance(29.9)
    assert (await _status(api, job["id"]))["status"] == "running"
    clock.advance(0.1)
    done = await _status(api, job["id"])
    assert done["status"] == "done" and done["ended_datetime"] is not None and done["info"] is None
    tickets = {t["id"]: t for t in (await api.state())["tickets"]}
    assert [(tickets[i]["status"], tickets[i]["priority"]) for i in (1, 2, 3)] == [
        ("closed", "high"), ("open", "normal"), ("closed", "high")]


async def test_a_job_ends_even_when_nobody_asks_about_it(make_api: MakeApi, clock: FakeClock) -> None:
    api = await make_api(SandboxSettings(rate_limit="off", job_duration_s=5))
    await _tickets(api, 1)
    await _job(api, {"type": "deleteTicket", "params": {"ticket_ids": [1]}})
    clock.advance(6)
    assert (await api.state())["tickets"] == []  # any later request (here the admin's) sees it finished


async def test_with_no_duration_a_job_is_pending_when_created_and_over_at_the_next_request(api: Api) -> None:
    await _tickets(api, 1)
    job = await _job(api, {"type": "updateTicket", "params": {"ticket_ids": [1], "updates": {"status": "closed"}}})
    assert job["status"] == "pending"
    assert (await _status(api, job["id"]))["status"] == "done"


async def test_delete_ticket_job_reports_missing_ids_and_deletes_the_others(api: Api) -> None:
    await _tickets(api, 2)
    job = await _job(api, {"type": "deleteTicket", "params": {"ticket_ids": [2, 9]}})
    done = await _status(api, job["id"])
    assert done["status"] == "errored" and done["info"] == {"missing_ticket_ids": [9]}
    assert [t["id"] for t in (await api.state())["tickets"]] == [1]


async def test_apply_macro_job_records_and_can_close(api: Api) -> None:
    await _tickets(api, 1)
    job = await _job(api, {"type": "applyMacro", "params": {"ticket_ids": [1], "macro_id": 12,
                                                           "apply_and_close": True}})
    assert (await _status(api, job["id"]))["status"] == "done"
    state = await api.state()
    assert state["applied_macros"] == [{"job_id": 1, "ticket_id": 1, "macro_id": 12}]
    assert state["tickets"][0]["status"] == "closed"


async def test_job_tags_are_names_added_to_each_ticket_and_created_when_missing(api: Api) -> None:
    await _tickets(api, 2)
    await api.call("POST", "/api/tags", {"name": "vip"})
    await api.call("PUT", "/api/tickets/1/tags", {"names": ["vip"]})
    updates = {"tags": ["late", "vip"], "assignee_team_id": 7}
    await _job(api, {"type": "updateTicket", "params": {"ticket_ids": [1, 2], "updates": updates}})
    tickets = {t["id"]: t for t in (await api.state())["tickets"]}
    assert [sorted(tag["name"] for tag in tickets[i]["tags"]) for i in (1, 2)] == [["late", "vip"], ["late", "vip"]]
    assert tickets[1]["assignee_team"] == {"id": 7}
    refused = [{"tags": [{"name": "vip"}]}, {"assignee_team": {"id": 7}}, {"tags": "vip"}]
    for bad in refused:
        r = await api.call("POST", "/api/jobs", {"type": "updateTicket", "params": {"ticket_ids": [1],
                                                                                   "updates": bad}})
        assert r.status == 400, bad


async def test_custom_fields_in_job_updates_replace_every_value_of_each_ticket(api: Api) -> None:
    await _tickets(api, 1)
    await api.call("PUT", "/api/tickets/1/custom-fields", [{"id": 1, "value": "Refund"}, {"id": 2, "value": "77"}])
    await _job(api, {"type": "updateTicket", "params": {"ticket_ids": [1],
                                                       "updates": {"custom_fields": [{"id": 2, "value": "78"}]}}})
    values = (await api.call("GET", "/api/tickets/1/custom-fields")).json["data"]
    assert [(v["field"]["id"], v["value"]) for v in values] == [(2, "78")]  # the contact reason is gone


async def test_a_job_can_be_made_to_fail_by_a_fault(api: Api) -> None:
    await _tickets(api, 4)
    await api.admin("PUT", "faults", {"spec": "job_errored=1"})
    updates = {"status": "closed"}
    errored = await _job(api, {"type": "updateTicket", "params": {"ticket_ids": [1, 2, 3], "updates": updates}})
    await api.admin("PUT", "faults", {"spec": "job_fatal_errored=1"})
    fatal = await _job(api, {"type": "updateTicket", "params": {"ticket_ids": [4], "updates": updates}})
    await api.admin("PUT", "faults", {"rules": []})
    first = await _status(api, errored["id"])
    assert first["status"] == "errored" and first["info"]["failed_ticket_ids"] == [2, 3]
    second = await _status(api, fatal["id"])
    assert second["status"] == "fatal_errored" and second["info"]["msg"]
    assert [t["status"] for t in (await api.state())["tickets"]] == ["closed", "open", "open", "open"]
    assert (await api.admin("GET", "faults"))[1]["injected"] == {"job_errored": 1, "job_fatal_errored": 1}


async def test_a_canceled_job_never_runs(make_api: MakeApi, clock: FakeClock) -> None:
    api = await make_api(SandboxSettings(rate_limit="off", job_duration_s=10))
    await _tickets(api, 1)
    job = await _job(api, {"type": "deleteTicket", "params": {"ticket_ids": [1]}})
    assert (await api.call("DELETE", f"/api/jobs/{job['id']}")).status == 204
    clock.advance(20)
    assert (await _status(api, job["id"]))["status"] == "canceled"
    assert len((await api.state())["tickets"]) == 1


async def test_ticket_job_params_are_strict(api: Api) -> None:
    await _tickets(api, 1)
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


async def test_a_scheduled_job_runs_at_its_time_at_most_an_hour_ahead(
        make_api: MakeApi, clock: FakeClock) -> None:
    from datetime import UTC, datetime, timedelta

    wall = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
    api = await make_api(SandboxSettings(rate_limit="off"), wall=lambda: wall)
    await _tickets(api, 1)
    r = await api.call("POST", "/api/jobs", {"type": "deleteTicket", "params": {"ticket_ids": [1]},
                                             "scheduled_datetime": (wall + timedelta(minutes=61)).isoformat()})
    assert r.status == 400 and "scheduled_datetime" in r.json["error"]["data"]
    job = await _job(api, {"type": "deleteTicket", "params": {"ticket_ids": [1]},
                           "scheduled_datetime": (wall + timedelta(minutes=10)).isoformat()})
    assert job["status"] == "scheduled"
    clock.advance(599)
    assert (await _status(api, job["id"]))["status"] == "scheduled"
    clock.advance(1)
    assert (await _status(api, job["id"]))["status"] == "done"
    assert (await api.state())["tickets"] == []


async def test_the_job_duration_can_be_changed_at_run_time(api: Api, clock: FakeClock) -> None:
    status, body = await api.admin("PUT", "jobs", {"duration_s": 60})
    assert status == 200 and body["duration_s"] == 60
    await _tickets(api, 1)
    job = await _job(api, {"type": "deleteTicket", "params": {"ticket_ids": [1]}})
    assert (await api.admin("GET", "jobs"))[1]["running"] == {"acme": 1}
    clock.advance(60)
    assert (await _status(api, job["id"]))["status"] == "done"
    assert (await api.admin("PUT", "jobs", {"duration_s": -1}))[0] == 400
