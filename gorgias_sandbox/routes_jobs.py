"""Jobs (asynchronous bulk operations): recorded, never run."""

from __future__ import annotations

from gorgias_sandbox.inputs import checked, page, require_found
from gorgias_sandbox.routing import Call, Reply, Route
from gorgias_sandbox.schemas import JOB_CREATE, JOB_UPDATE


def create_job(call: Call) -> Reply:
    """``POST /api/jobs`` → 201 Job, status ``scheduled`` when ``scheduled_datetime`` is set, else
    ``pending`` (INF: the job never runs)."""
    values = checked(call.body, JOB_CREATE, "Failed to create job")
    jid = call.account.next_id("job")
    job = {"id": jid, "uri": f"/api/jobs/{jid}/", "type": values["type"], "params": values["params"],
           "status": "scheduled" if values.get("scheduled_datetime") else "pending",
           "meta": values.get("meta"), "info": None, "scheduled_datetime": values.get("scheduled_datetime"),
           "created_datetime": call.now, "updated_datetime": call.now, "started_datetime": None,
           "ended_datetime": None, "user_id": call.principal.user_id}
    call.account.jobs[jid] = job
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
