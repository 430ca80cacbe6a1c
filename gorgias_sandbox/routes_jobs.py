"""Jobs (asynchronous bulk operations). ``updateTicket``, ``applyMacro`` and ``deleteTicket`` over a list of
``ticket_ids`` run at once, applied to the state; the other types (exports, imports) are recorded, never run."""

from __future__ import annotations

from typing import Any

from gorgias_sandbox.errors import invalid
from gorgias_sandbox.inputs import checked, page, require_found
from gorgias_sandbox.routes_tickets import apply_ticket_update, ticket_update_errors
from gorgias_sandbox.routing import Call, Reply, Route
from gorgias_sandbox.schemas import JOB_CREATE, JOB_PARAMS, JOB_UPDATE
from gorgias_sandbox.state import AccountState


def _checked_params(account: AccountState, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    schema = JOB_PARAMS.get(kind)
    if schema is None:
        return params
    params = checked(params, schema, "Failed to create job")
    if kind == "updateTicket":
        updates = params["updates"]
        errors = ticket_update_errors(account, updates)
        if errors:
            raise invalid("Failed to create job", {"params": {"updates": errors}})
    return params


def _run(account: AccountState, job: dict[str, Any], now: str) -> None:
    """Apply a ticket job to every listed ticket that exists; missing ones are reported in ``info``."""
    kind, params = job["type"], job["params"]
    missing = [tid for tid in dict.fromkeys(params["ticket_ids"]) if tid not in account.tickets]
    for tid in dict.fromkeys(params["ticket_ids"]):
        ticket = account.tickets.get(tid)
        if ticket is None:
            continue
        if kind == "deleteTicket":
            account.delete_ticket(tid)
        elif kind == "updateTicket":
            apply_ticket_update(account, ticket, params["updates"], now)
        else:
            account.applied_macros.append({"job_id": job["id"], "ticket_id": tid, "macro_id": params["macro_id"]})
            updates: dict[str, Any] = {"status": "closed"} if params.get("apply_and_close") else {}
            apply_ticket_update(account, ticket, updates, now)
    job.update(status="errored" if missing else "done", started_datetime=now, ended_datetime=now,
               info={"missing_ticket_ids": missing} if missing else None)


def create_job(call: Call) -> Reply:
    """``POST /api/jobs`` → 201 Job. Ticket jobs (``updateTicket``, ``applyMacro``, ``deleteTicket``) are
    validated and run at once unless ``scheduled_datetime`` is set (then ``scheduled``, never run, INF);
    other types stay ``pending``."""
    values = checked(call.body, JOB_CREATE, "Failed to create job")
    params = _checked_params(call.account, values["type"], values["params"])
    jid = call.account.next_id("job")
    job = {"id": jid, "uri": f"/api/jobs/{jid}/", "type": values["type"], "params": params,
           "status": "scheduled" if values.get("scheduled_datetime") else "pending",
           "meta": values.get("meta"), "info": None, "scheduled_datetime": values.get("scheduled_datetime"),
           "created_datetime": call.now, "updated_datetime": call.now, "started_datetime": None,
           "ended_datetime": None, "user_id": call.principal.user_id}
    call.account.jobs[jid] = job
    if values["type"] in JOB_PARAMS and job["status"] == "pending":
        _run(call.account, job, call.now)
    return Reply(201, job)


def update_job(call: Call) -> Reply:
    """``PUT /api/jobs/{id}`` → 202 Job (meta, params, scheduled_datetime, status)."""
    job = require_found(call.account.jobs.get(call.params[0]))
    values = checked(call.body, JOB_UPDATE, "Failed to update job", require=False)
    job.update(values)
    job["updated_datetime"] = call.now
    return Reply(202, job)


def cancel_job(call: Call) -> Reply:
    """``DELETE /api/jobs/{id}`` → 204; the job stays, with status ``canceled``."""
    job = require_found(call.account.jobs.get(call.params[0]))
    job["status"] = "canceled"
    job["updated_datetime"] = call.now
    return Reply(204)


def get_job(call: Call) -> Reply:
    """``GET /api/jobs/{id}`` → 202 (sic: the status Gorgias's spec declares)."""
    return Reply(202, require_found(call.account.jobs.get(call.params[0])))


def list_jobs(call: Call) -> Reply:
    """``GET /api/jobs``."""
    return Reply(200, page(call.query, call.path, list(call.account.jobs.values())))


ROUTES = [
    Route("POST", "/api/jobs", create_job),
    Route("GET", "/api/jobs", list_jobs),
    Route("PUT", "/api/jobs/{id}", update_job),
    Route("DELETE", "/api/jobs/{id}", cancel_job),
    Route("GET", "/api/jobs/{id}", get_job),
]
