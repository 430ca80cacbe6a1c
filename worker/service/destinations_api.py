"""REST routes that save destinations at runtime (Connect-like): create, replace, delete, read the config.

``POST /destinations`` creates one (body: one destination in the file's schema; it starts paused),
``PUT /destinations/{name}`` replaces or creates it (``If-Match: "<version>"`` optional; a stale one is
a 412), ``DELETE /destinations/{name}`` deletes it (``?forget_offsets=true`` also drops its consumer
group's offsets), ``GET /destinations/{name}/config`` shows its config, secrets masked, with its version
and ``ETag``. Writes go to the destinations store and every replica follows it
(:mod:`worker.service.saved_destinations`); a destination of the config file is refused (409).
Errors: ``{"error": "<one line>", "errors": [{"path", "message", "suggestion"}]}`` (``errors`` on 400s).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiokafka.errors import KafkaError

from worker.core.config.base import ConfigError
from worker.core.config.effective import masked_document
from worker.core.store.entries import StoredEntry
from worker.core.store.writes import ANYTHING, PRESENT, EntryExists, NoSuchEntry, StaleVersion, WriteRefused
from worker.host.environment import resolve_secret
from worker.kafka.group_offsets import forget_group
from worker.kafka.store import StoreUnavailable
from worker.service.control_http import RUNTIME, error, expectation, invalid, json_body, json_response
from worker.service.runtime import Runtime
from worker.service.saved_destinations import FileDefined, Saved, SavedDestinations

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _saved_answer(saved: Saved, runtime: Runtime) -> dict[str, Any]:
    name = saved.entry.name
    state = "active" if saved.active else "paused"
    if saved.active is None:
        current = runtime.destination_status(name)
        state = current["state"] if current is not None else "paused"
    doc: dict[str, Any] = {"name": name, "version": saved.entry.version, "state": state}
    if saved.offsets is not None:
        doc["offsets"] = saved.offsets
    return doc


def _etag(entry: StoredEntry) -> dict[str, str]:
    return {"ETag": f'"{entry.version}"'}


StoreHandler = Callable[[web.Request, Runtime, SavedDestinations], Awaitable[web.Response]]


def _guarded(handler: StoreHandler) -> Handler:
    """``handler`` with the app's runtime and store, and the store's refusals as HTTP answers."""

    async def run(request: web.Request) -> web.StreamResponse:
        runtime = request.app[RUNTIME]
        if runtime.saved is None:
            return error(503, "the worker is still starting")
        try:
            return await handler(request, runtime, runtime.saved)
        except ConfigError as exc:
            raise invalid(exc.items, "the destination is not valid") from None
        except FileDefined as exc:
            return error(409, str(exc))
        except EntryExists as exc:
            return error(409, f"destination {exc.name!r} exists (version {exc.current}): PUT "
                              f"/destinations/{exc.name} replaces it")
        except StaleVersion as exc:
            return error(412, f"destination {exc}")
        except NoSuchEntry as exc:
            return error(404, f"no destination named {exc.name!r} is saved")
        except WriteRefused as exc:
            return error(409, str(exc))
        except (StoreUnavailable, KafkaError) as exc:
            return error(503, f"the destinations store cannot be written now: {exc}")

    return run


async def _create(request: web.Request, runtime: Runtime, saved: SavedDestinations) -> web.Response:
    result = await saved.create(await json_body(request))
    return json_response(_saved_answer(result, runtime), 201, _etag(result.entry))


async def _replace(request: web.Request, runtime: Runtime, saved: SavedDestinations) -> web.Response:
    name = request.match_info["name"]
    expect = expectation(request, ANYTHING)
    created = saved.store.version_of(name) is None
    result = await saved.replace(name, await json_body(request), expect)
    return json_response(_saved_answer(result, runtime), 201 if created else 200, _etag(result.entry))


async def _delete(request: web.Request, runtime: Runtime, saved: SavedDestinations) -> web.Response:
    name = request.match_info["name"]
    forget = request.query.get("forget_offsets", "false").lower() in ("1", "true", "yes")
    wanted = saved.wanted(name)
    version = await saved.delete(name, expectation(request, PRESENT))
    doc: dict[str, Any] = {"name": name, "deleted_version": version, "offsets": "kept"}
    if forget and not isinstance(wanted, str) and wanted is not None:
        group = wanted.consumer_group(runtime.config.kafka.group_id)
        grace = runtime.config.worker.shutdown_grace_s
        doc["offsets"] = await forget_group(runtime.config.kafka, group, grace + 15)
        doc["group"] = group
    return json_response(doc)


async def _config(request: web.Request, runtime: Runtime, saved: SavedDestinations) -> web.Response:
    name = request.match_info["name"]
    entry = saved.stored(name)
    if entry is not None:
        doc = masked_document(entry.document, _secret_values(runtime, name))
        state = runtime.destination_status(name)
        return json_response({"name": name, "source": "store", "version": entry.version, "config": doc,
                              "state": state["state"] if state else None, **entry.describe()}, headers=_etag(entry))
    if name in saved.store.unreadable:
        return error(409, f"destination {name!r} is saved but cannot be read: {saved.store.unreadable[name]}")
    if name in saved.file_destinations:
        dest = saved.file_destinations[name]
        doc = masked_document(dest.model_dump(mode="json", exclude_none=True), _secret_values(runtime, name))
        return json_response({"name": name, "source": "file", "file": saved.config_file, "config": doc})
    return error(404, f"no destination named {name!r}")


def destination_routes() -> list[web.RouteDef]:
    """The routes (the runtime and its destinations store come from the app)."""
    return [
        web.post("/destinations", _guarded(_create)),
        web.put("/destinations/{name}", _guarded(_replace)),
        web.delete("/destinations/{name}", _guarded(_delete)),
        web.get("/destinations/{name}/config", _guarded(_config)),
    ]


def _secret_values(runtime: Runtime, name: str) -> list[str]:
    """The secret values a destination's config could show through ``${VAR}`` (masked if found)."""
    try:
        return [resolve_secret(runtime.destination(name).credential.secret()).get_secret_value()]
    except (KeyError, LookupError):
        return []
