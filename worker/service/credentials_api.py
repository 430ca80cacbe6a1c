"""REST routes of the credentials: list, save, change, delete and test them (issues 21 and 19).

``GET /credentials`` lists every named credential (the config file's and those saved at runtime) with
how its secret is provided (``env``, ``file`` or ``stored``; never the secret nor its length), whether
Gorgias takes it (``ok`` or ``held`` with the reason) and which destinations use it; an OAuth app's also
the ``scope`` its current access token was granted (not a secret; null while unknown). ``POST /credentials``
saves one (a secret given in the body is stored encrypted), ``PUT /credentials/{name}`` replaces or creates
it (``If-Match: "<version>"``), ``DELETE`` removes it unless a destination uses it (409 naming them).
``POST /credentials/{name}/test`` and ``POST /credentials/test`` (an unsaved body) send one
``GET /api/account`` through the account's shared budget. ``POST /credentials/re-encrypt`` encrypts every
stored secret again under the first key (key rotation).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from worker.core.config.account import Credential
from worker.core.config.base import ConfigError
from worker.core.config.delivery import DeliverySettings
from worker.core.store.credentials import public_view
from worker.core.store.entries import StoredEntry
from worker.core.store.writes import ANYTHING, PRESENT, EntryExists, NoSuchEntry, StaleVersion, WriteRefused
from worker.gorgias.account_check import AccountCheck, check_account
from worker.gorgias.client import GorgiasClient
from worker.gorgias.oauth import app_key, is_app
from worker.host.environment import resolve_secret
from worker.kafka.store import StoreUnavailable
from worker.service.control_http import RUNTIME, error, expectation, invalid, json_body, json_response
from worker.service.runtime import Runtime
from worker.service.saved_credentials import (
    CredentialInUse,
    FileDefinedCredential,
    NoSecretsKey,
    SavedCredentials,
)
from worker.service.shared_tokens import shared_scope

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNSAVED = "unsaved"  # the name an unsaved credential is checked under


def _etag(entry: StoredEntry) -> dict[str, str]:
    return {"ETag": f'"{entry.version}"'}


def users_of(runtime: Runtime, name: str) -> list[str]:
    """The destinations (running, saved or failed) that use the credential ``name``."""
    running = {n for n, p in runtime.pipelines.items() if p.dest.credential.name == name}
    saved = set(runtime.saved.users_of(name)) if runtime.saved is not None else set()
    return sorted(running | saved)


def _state(runtime: Runtime, name: str) -> dict[str, Any]:
    """Whether Gorgias takes the credential: ``held`` with the reason while a 401 holds its calls."""
    gates = [g for g in runtime.delivery.gates if g.credential.name == name] if runtime.delivery else []
    held = next((g for g in gates if g.held), None)
    checks = [g.last_check for g in gates if g.last_check is not None]
    return {"state": "held" if held else "ok", "reason": held.reason if held else None,
            "last_check": checks[-1].as_dict() if checks else None}


def granted_scope(runtime: Runtime, credential: Credential) -> str | None:
    """The scope an OAuth app's current access token was granted: this replica's token, else the one the
    deployment shares (None: unknown yet)."""
    assert runtime.delivery is not None and runtime.saved_credentials is not None
    here = runtime.delivery.granted_scope(credential)
    return here if here is not None else shared_scope(runtime.saved_credentials.store, app_key(credential))


def _describe(runtime: Runtime, name: str, shown: dict[str, Any]) -> dict[str, Any]:
    credential = runtime.named_credentials().get(name)
    scope = {"scope": granted_scope(runtime, credential)} if credential is not None and is_app(credential) else {}
    return {**shown, **scope, **_state(runtime, name), "used_by": users_of(runtime, name)}


def _credential(runtime: Runtime, saved: SavedCredentials, name: str) -> Credential:
    found = runtime.named_credentials().get(name)
    if found is None:
        problem = saved.problem(name)
        text = f"credential {name!r} cannot be used: {problem}" if problem else f"no credential named {name!r}"
        raise web.HTTPNotFound(text=orjson.dumps({"error": text}).decode(), content_type="application/json")
    return found


async def _check_unsaved(runtime: Runtime, saved: SavedCredentials, body: Any) -> AccountCheck:
    """One ``GET /api/account`` with a credential that is not saved (its secret given in the body or as a
    reference the saved ones could use), through the account's shared budget."""
    if isinstance(body, dict) and not body.get("name"):
        body = {**body, "name": UNSAVED}
    checked = saved.check(body)
    credential = checked.credential
    field = credential.secret_field
    secret = SecretStr(checked.secrets[field]) if field in checked.secrets else resolve_secret(credential.secret())
    assert runtime.delivery is not None
    client = GorgiasClient(credential, secret, DeliverySettings())
    try:
        return await check_account(client, credential, runtime.delivery.limiters.get(credential))
    finally:
        await client.aclose()


# complexity: route closures over the app; the nested handlers' branches count here too
def credential_routes() -> list[web.RouteDef]:  # noqa: C901
    """The routes (the runtime and its credentials store come from the app)."""

    # complexity: one except per store error, each mapped to its HTTP answer
    def guarded(handler: Callable[[web.Request, Runtime, SavedCredentials], Awaitable[web.Response]]) -> Handler:  # noqa: C901
        # complexity: one except per store error, each mapped to its HTTP answer
        async def run(request: web.Request) -> web.StreamResponse:  # noqa: C901
            runtime = request.app[RUNTIME]
            saved = runtime.saved_credentials
            if saved is None or runtime.delivery is None:
                return error(503, "the worker is still starting")
            try:
                return await handler(request, runtime, saved)
            except ConfigError as exc:
                raise invalid(exc.items, "the credential is not valid") from None
            except (FileDefinedCredential, CredentialInUse) as exc:
                return error(409, str(exc))
            except EntryExists as exc:
                return error(409, f"credential {exc.name!r} exists (version {exc.current}): PUT "
                                  f"/credentials/{exc.name} replaces it")
            except StaleVersion as exc:
                return error(412, f"credential {exc}")
            except NoSuchEntry as exc:
                return error(404, f"no credential named {exc.name!r} is saved")
            except WriteRefused as exc:
                return error(409, str(exc))
            except NoSecretsKey as exc:
                return error(503, str(exc))
            except LookupError as exc:
                return error(400, f"the credential's secret cannot be read: {exc}")
            except (StoreUnavailable, KafkaError) as exc:
                return error(503, f"the credentials store cannot be written now: {exc}")

        return run

    async def listing(request: web.Request, runtime: Runtime, saved: SavedCredentials) -> web.Response:
        items = [_describe(runtime, name, {**public_view(c.model_dump(mode="json", exclude_none=True)),
                                           "source": "file"})
                 for name, c in sorted(runtime.config.credentials.items())]
        for name in saved.names():
            view = saved.view(name)
            problem = saved.problem(name)
            shown = view if view is not None else {"name": name, "source": "store"}
            items.append({**_describe(runtime, name, shown), **({"problem": problem} if problem else {})})
        return json_response({"credentials": items})

    async def one(request: web.Request, runtime: Runtime, saved: SavedCredentials) -> web.Response:
        name = request.match_info["name"]
        entry = saved.store.entries.get(name)
        view = saved.view(name)
        if view is not None and entry is not None:
            return json_response(_describe(runtime, name, view), headers=_etag(entry))
        file_defined = runtime.config.credentials.get(name)
        if file_defined is not None:
            shown = {**public_view(file_defined.model_dump(mode="json", exclude_none=True)), "source": "file"}
            return json_response(_describe(runtime, name, shown))
        return error(404, f"no credential named {name!r}")

    async def create(request: web.Request, runtime: Runtime, saved: SavedCredentials) -> web.Response:
        written = await saved.create(await json_body(request))
        entry = written.entry
        return json_response({"name": entry.name, "version": entry.version}, 201, _etag(entry))

    async def replace(request: web.Request, runtime: Runtime, saved: SavedCredentials) -> web.Response:
        name = request.match_info["name"]
        written = await saved.replace(name, await json_body(request), expectation(request, ANYTHING))
        entry = written.entry
        return json_response({"name": name, "version": entry.version}, 201 if written.created else 200, _etag(entry))

    async def delete(request: web.Request, runtime: Runtime, saved: SavedCredentials) -> web.Response:
        name = request.match_info["name"]
        version = await saved.delete(name, users_of(runtime, name), expectation(request, PRESENT))
        return json_response({"name": name, "deleted_version": version})

    async def test_saved(request: web.Request, runtime: Runtime, saved: SavedCredentials) -> web.Response:
        credential = _credential(runtime, saved, request.match_info["name"])
        assert runtime.delivery is not None
        gate = runtime.delivery.gates.get(credential, DeliverySettings())
        await gate.renew()  # the secret as stored now (a PUT may just have changed it)
        return json_response((await gate.check()).as_dict())

    async def test_unsaved(request: web.Request, runtime: Runtime, saved: SavedCredentials) -> web.Response:
        return json_response((await _check_unsaved(runtime, saved, await json_body(request))).as_dict())

    async def re_encrypt(request: web.Request, runtime: Runtime, saved: SavedCredentials) -> web.Response:
        return json_response({"re_encrypted": await saved.re_encrypt()})

    return [
        web.get("/credentials", guarded(listing)),
        web.post("/credentials", guarded(create)),
        web.post("/credentials/test", guarded(test_unsaved)),
        web.post("/credentials/re-encrypt", guarded(re_encrypt)),
        web.get("/credentials/{name}", guarded(one)),
        web.put("/credentials/{name}", guarded(replace)),
        web.delete("/credentials/{name}", guarded(delete)),
        web.post("/credentials/{name}/test", guarded(test_saved)),
    ]
