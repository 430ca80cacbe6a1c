"""The sandbox's OAuth server (issue 25 item 3): the refresh grant, access tokens that expire, refresh-token
rotation, revoked tokens, client authentication, and the OAuth budget of 80 / 20 s."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from tests.support.sandbox_api import HOST, Api, FakeClock, MakeApi

CLIENT = {"client_id": "sandbox-client", "client_secret": "sandbox-client-secret"}


async def token(api: Api, refresh: str = "sandbox-refresh-token", *, body: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    form = body if body is not None else {"grant_type": "refresh_token", "refresh_token": refresh, **CLIENT}
    sent = {"Host": HOST, "Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    data = raw if raw is not None else urlencode(form).encode()
    async with api.client.post("/oauth/token", data=data, headers=sent) as resp:
        return resp.status, await resp.json()


async def test_a_refresh_token_buys_an_access_token_that_works_until_it_expires(
    make_api: MakeApi, clock: FakeClock,
) -> None:
    api = await make_api(oauth_access_token_lifetime_s=20)
    status, answer = await token(api)
    assert status == 200 and answer["token_type"] == "Bearer" and answer["expires_in"] == 20
    assert "refresh_token" not in answer and "offline" in answer["scope"]
    bearer = f"Bearer {answer['access_token']}"
    account = await api.call("GET", "/api/account", auth=bearer)
    assert account.status == 200 and account.call_limit == "1/80"  # the OAuth budget
    clock.advance(19.9)
    assert (await api.call("GET", "/api/account", auth=bearer)).status == 200
    clock.advance(0.2)
    expired = await api.call("GET", "/api/account", auth=bearer)
    assert expired.status == 401 and expired.json == {"error": {"msg": "Unauthorized."}}
    assert (await api.call("GET", "/api/account", auth=bearer, host="other.gorgias.com")).status == 404


async def test_with_rotation_every_refresh_answers_a_new_refresh_token_and_the_old_one_is_refused(
    make_api: MakeApi,
) -> None:
    api = await make_api(oauth_rotate_refresh_tokens=True)
    _, first = await token(api)
    assert first["refresh_token"] != "sandbox-refresh-token"
    status, refused = await token(api)  # the old one, used again
    assert status == 400 and refused["error"] == "invalid_grant"
    status, second = await token(api, first["refresh_token"])
    assert status == 200 and second["refresh_token"] not in (first["refresh_token"], "sandbox-refresh-token")
    _, described = await api.admin("GET", "oauth")
    assert described["token_requests"] == 3 and described["tokens_issued"] == 2
    assert described["refused"] == {"invalid_grant": 1}


async def test_a_revoked_refresh_token_and_a_wrong_client_are_refused(api: Api) -> None:
    status, body = await api.admin("POST", "oauth/revoke", {"client_id": "sandbox-client"})
    assert status == 200 and body == {"revoked": 1}
    status, refused = await token(api)
    assert status == 400 and refused["error"] == "invalid_grant"
    _, authorized = await api.admin("POST", "oauth/authorize", {"client_id": "sandbox-client"})
    status, answer = await token(api, authorized["refresh_token"])
    assert status == 200
    wrong = {"grant_type": "refresh_token", "refresh_token": authorized["refresh_token"],
             "client_id": "sandbox-client", "client_secret": "nope"}
    assert (await token(api, body=wrong))[0] == 401
    basic = base64.b64encode(b"sandbox-client:sandbox-client-secret").decode()
    by_header = {"grant_type": "refresh_token", "refresh_token": authorized["refresh_token"]}
    assert (await token(api, body=by_header, headers={"Authorization": f"Basic {basic}"}))[0] == 200
    status, grant = await token(api, body={**CLIENT, "grant_type": "password"})
    assert status == 400 and grant["error"] == "unsupported_grant_type"
    status, json_body = await token(api, raw=b'{"grant_type": "refresh_token"}',
                                    headers={"Content-Type": "application/json"})
    assert status == 400 and json_body["error"] == "invalid_request"
    await api.admin("POST", "reset")
    assert (await token(api))[0] == 200  # the configured refresh token again
    assert (await api.call("GET", "/api/account", auth=f"Bearer {answer['access_token']}")).status == 401


async def test_the_lifetime_and_rotation_change_while_it_runs(api: Api) -> None:
    status, body = await api.admin("PUT", "oauth", {"access_token_lifetime_s": 20, "rotate_refresh_tokens": True})
    assert status == 200 and (body["access_token_lifetime_s"], body["rotate_refresh_tokens"]) == (20, True)
    _, answer = await token(api)
    assert answer["expires_in"] == 20 and "refresh_token" in answer
    assert (await api.admin("PUT", "oauth", {"access_token_lifetime_s": 0}))[0] == 400
    assert (await api.admin("PUT", "oauth", {"rotate": True}))[0] == 400
