"""Jobs (asynchronous bulk operations over tickets).

``updateTicket``, ``applyMacro`` and ``deleteTicket`` over a list of ``ticket_ids`` are validated when
created, answered ``pending`` (or ``scheduled``) and run in the background (:mod:`gorgias_sandbox.job_runner`):
their work is applied when they finish. The other types (exports, imports) are recorded, never run.
"""

from __future__ import annotations

from typing import Any

from gorgias_sandbox.errors import invalid
from gorgias_sandbox.inputs import checked, page, require_found
from gorgias_sandbox.routes_tickets import apply_ticket_update, ticket_update_errors
from gorgias_sandbox.routing import Call, Reply, Route
from gorgias_sandbox.schemas import JOB_CREATE, JOB_PARAMS, JOB_UPDATE
from gorgias_sandbox.state import AccountState
from gorgias_sandbox.timestamps import parse_timestamp

FAILED = "Failed to create job"
MAX_SCHEDULE_AHEAD_S = 3600  # DOC: scheduled_datetime at most 60 minutes ahead
_JOB_ONLY = ("tags", "assignee_team_id")


def _ticket_update(updates: dict[str, Any]) -> dict[str, Any]:
    """A job's ``updates`` as the ticket update it makes (tags apart: they are added, see :func:`_apply`)."""
    values = {key: value for key, value in updates.items() if key not in _JOB_ONLY}
    if "assignee_team_id" in updates:
        team = updates["assignee_team_id"]
        values["assignee_team"] = None if team is None else {"id": team}
    return values


def _params_errors(account: AccountState, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    if kind != "updateTicket":
        return {}
    errors = ticket_update_errors(account, _ticket_update(params["updates"]))
    return {"params": {"updates": errors}} if errors else {}


def _checked_params(account: AccountState, kind: str, params: dict[str, Any], failure: str) -> dict[str, Any]:
    schema = JOB_PARAMS.get(kind)
    if schema is None:
        return params
    params = checked(params, schema, failure)
    errors = _params_errors(account, kind, params)
    if errors:
        raise invalid(failure, errors)
    return params


def _check_schedule(scheduled: str | None, now: str) -> None:
    if scheduled is None:
        return
    ahead = (parse_timestamp(scheduled) - parse_timestamp(now)).total_seconds()
    if ahead > MAX_SCHEDULE_AHEAD_S:
        raise invalid(FAILED, {"scheduled_datetime": ["Must be at most 60 minutes in the future."]})


def _apply(account: AccountState, job: dict[str, Any], tid: int, now: str) -> None:
    """Apply the job to one existing ticket."""
    kind, params = job["type"], job["params"]
    ticket = account.tickets[tid]
    if kind == "deleteTicket":
        account.delete_ticket(tid)
    elif kind == "updateTicket":
        updates = params["updates"]
        apply_ticket_update(account, ticket, _ticket_update(updates), now)
        if updates.get("tags"):
            account.set_ticket_tags(ticket, ticket.tag_ids + [account.tag_named(n, now) for n in updates["tags"]])
    else:
        account.applied_macros.append({"job_id": job["id"], "ticket_id": tid, "macro_id": params["macro_id"]})
        apply_ticket_update(account, ticket, {"status": "closed"} if params.get("apply_and_close") else {}, now)


def finish_job(account: AccountState, job: dict[str, Any], now: str, failure: str | None) -> None:
    """Run a ticket job that has reached its end (:data:`gorgias_sandbox.job_runner.JobWork`).

    ``done`` when every listed ticket was changed; ``errored`` with ``info.missing_ticket_ids`` when some no
    longer exist (the others are changed, INF). Injected failures: ``errored`` changes the first half of
    the tickets and names the rest in ``info.failed_ticket_ids``; ``fatal_errored`` changes nothing (INF).
    A job whose references went away since it was created (an assignee deleted) ends ``fatal_errored``."""
    ids = list(dict.fromkeys(job["params"]["ticket_ids"]))
    problems = _params_errors(account, job["type"], job["params"])
    if failure == "fatal_errored" or problems:
        info: dict[str, Any] = {"msg": "The job failed."}
        if problems:
            info["errors"] = problems
        job.update(status="fatal_errored", info=info)
        return
    todo = ids if failure is None else ids[: len(ids) // 2]
    missing = [tid for tid in ids if tid not in account.tickets]
    for tid in todo:
        if tid in account.tickets:
            _apply(account, job, tid, now)
    if failure == "errored":
        job.update(status="errored",
                   info={"msg": "The job stopped before its end.", "failed_ticket_ids": ids[len(todo):]})
    elif missing:
        job.update(status="errored", info={"missing_ticket_ids": missing})
    else:
        job.update(status="done", info=None)


def create_job(call: Call) -> Reply:
    """``POST /api/jobs`` → 201 Job, ``pending`` (``scheduled`` when ``scheduled_datetime`` is ahead, at most 60
    minutes: DOC). Ticket jobs are validated now and run in the background; other types stay ``pending``."""
    values = checked(call.body, JOB_CREATE, FAILED)
    params = _checked_params(call.account, values["type"], values["params"], FAILED)
    scheduled = values.get("scheduled_datetime")
    _check_schedule(scheduled, call.now)
    ahead = scheduled is not None and parse_timestamp(scheduled) > parse_timestamp(call.now)
    jid = call.account.next_id("job")
    job = {"id": jid, "uri": f"/api/jobs/{jid}/", "type": values["type"], "params": params,
           "status": "scheduled" if ahead else "pending",
           "meta": values.get("meta"), "info": None, "scheduled_datetime": scheduled,
           "created_datetime": call.now, "updated_datetime": call.now, "started_datetime": None,
           "ended_datetime": None, "user_id": call.principal.user_id}
    call.account.jobs[jid] = job
    if values["type"] in JOB_PARAMS and call.jobs is not None:
        call.jobs.enqueue(call.account, job, call.now)
    return Reply(201, job)


def update_job(call: Call) -> Reply:
    """``PUT /api/jobs/{id}`` → 202 Job (meta, params, scheduled_datetime, status)."""
    job = require_found(call.account.jobs.get(call.params[0]))
    failure = "Failed to update job"
    values = checked(call.body, JOB_UPDATE, failure, require=False)
    if "params" in values:
        values["params"] = _checked_params(call.account, job["type"], values["params"], failure)
    job.update(values)
    job["updated_datetime"] = call.now
    return Reply(202, job)


def cancel_job(call: Call) -> Reply:
    """``DELETE /api/jobs/{id}`` → 204; the job stays, ``canceled`` (what already ran is not reverted, DOC)."""
    job = require_found(call.account.jobs.get(call.params[0]))
    if job["status"] not in ("done", "errored", "fatal_errored"):
        job["status"] = "canceled"
    job["updated_datetime"] = call.now
    return Reply(204)


def get_job(call: Call) -> Reply:
    """``GET /api/jobs/{id}`` → 202 (sic: the status Gorgias's spec declares)."""
    return Reply(202, require_found(call.account.jobs.get(call.params[0])))


def list_jobs(call: Call) -> Reply:
    """``GET /api/jobs``: cursor pages of every job (SPEC route; no filter by id or status is documented,
    so none is modelled: like any unknown parameter it is a 400)."""
    return Reply(200, page(call.query, call.path, list(call.account.jobs.values())))


ROUTES = [
    Route("POST", "/api/jobs", create_job),
    Route("GET", "/api/jobs", list_jobs),
    Route("PUT", "/api/jobs/{id}", update_job),
    Route("DELETE", "/api/jobs/{id}", cancel_job),
    Route("GET", "/api/jobs/{id}", get_job),
]
