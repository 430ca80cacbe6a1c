"""The sandbox's authorization-code grant (RFC 6749 §4.1, issue 25's README step 3): ``GET /oauth/authorize``
redirects with a code for a registered client, and ``POST /oauth/token`` exchanges it once, while it lasts,
for the client it was issued to and with the redirect URI the request named; every refusal."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from gorgias_sandbox.settings import AccountSettings, OAuthAppSettings, UserSettings
from tests.support.sandbox_api import HOST, Api, FakeClock, MakeApi

CALLBACK = "https://app.example.com/oauth/callback"
SECRET = "sandbox-client-secret"
SCOPE = "openid offline account:read tickets:read tickets:write"


def basic(client_id: str = "sandbox-client", secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def authorize(api: Api, **overrides: str | None) -> tuple[int, str | None]:
    """``GET /oauth/authorize`` as the browser opens it: the status and the ``Location`` it sends to."""
    params = {"response_type": "code", "client_id": "sandbox-client", "redirect_uri": CALLBACK, "scope": SCOPE,
              "state": "st-42", "nonce": "n-7", **overrides}
    query = urlencode({k: v for k, v in params.items() if v is not None})
    answer = await api.call("GET", f"/oauth/authorize?{query}", auth=None)
    return answer.status, answer.headers.get("Location")


def sent_back(location: str | None) -> dict[str, str]:
    assert location is not None
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def code_of(api: Api, **overrides: str | None) -> str:
    status, location = await authorize(api, **overrides)
    assert status == 302, location
    return sent_back(location)["code"]


async def exchange(api: Api, code: str, *, headers: dict[str, str] | None = None,
                   **form: str | None) -> tuple[int, dict[str, Any], Any]:
    """``POST /oauth/token`` with the code grant, as the README's curl sends it (Basic, form-encoded)."""
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, **form}
    sent = {"Host": HOST, "Content-Type": "application/x-www-form-urlencoded",
            **(basic() if headers is None else headers)}
    data = urlencode({k: v for k, v in body.items() if v is not None}).encode()
    async with api.client.post("/oauth/token", data=data, headers=sent) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_the_code_is_sent_to_the_redirect_uri_and_exchanged_for_tokens_that_work(make_api: MakeApi) -> None:
    api = await make_api()  # Gorgias' budgets on
    status, location = await authorize(api)
    assert status == 302 and location is not None and location.startswith(CALLBACK + "?")
    back = sent_back(location)
    assert set(back) == {"code", "state"} and back["state"] == "st-42"
    status, answer, headers = await exchange(api, back["code"])
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert set(answer) == {"access_token", "refresh_token", "expires_in", "token_type", "scope"}
    assert (answer["token_type"], answer["expires_in"], answer["scope"]) == ("Bearer", 86_400, SCOPE)
    account = await api.call("GET", "/api/account", auth=f"Bearer {answer['access_token']}")
    assert account.status == 200 and account.call_limit == "1/80"  # the app acts for its user, on the OAuth budget
    refresh = {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]}
    async with api.client.post("/oauth/token", data=urlencode(refresh).encode(), headers={
            "Host": HOST, "Content-Type": "application/x-www-form-urlencoded", **basic()}) as resp:
        assert resp.status == 200 and (await resp.json())["scope"] == SCOPE
    _, described = await api.admin("GET", "oauth")
    assert described["codes_issued"] == 1 and described["refused"] == {}


async def test_the_client_may_authenticate_in_the_body_and_without_offline_there_is_no_refresh_token(
    api: Api,
) -> None:
    code = await code_of(api, scope="openid account:read")
    status, answer, _ = await exchange(api, code, headers={}, client_id="sandbox-client", client_secret=SECRET)
    assert status == 200 and "refresh_token" not in answer and answer["scope"] == "openid account:read"


async def test_a_code_works_once_and_using_it_again_revokes_what_it_gave(api: Api) -> None:
    code = await code_of(api)
    _, first, _ = await exchange(api, code)
    status, again, _ = await exchange(api, code)
    assert status == 400 and again["error"] == "invalid_grant" and "already used" in again["error_description"]
    assert (await api.call("GET", "/api/account", auth=f"Bearer {first['access_token']}")).status == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    async with api.client.post("/oauth/token", data=urlencode(refresh).encode(), headers={
            "Host": HOST, "Content-Type": "application/x-www-form-urlencoded", **basic()}) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"


async def test_a_code_expires_after_its_configured_lifetime(make_api: MakeApi, clock: FakeClock) -> None:
    api = await make_api(oauth_code_lifetime_s=30)
    kept, late = await code_of(api), await code_of(api)
    clock.advance(29.9)
    assert (await exchange(api, kept))[0] == 200
    clock.advance(0.2)
    status, expired, _ = await exchange(api, late)
    assert status == 400 and expired["error"] == "invalid_grant" and "expired" in expired["error_description"]
    status, body = await api.admin("PUT", "oauth", {"code_lifetime_s": 5})
    assert status == 200 and body["code_lifetime_s"] == 5
    assert (await api.admin("PUT", "oauth", {"code_lifetime_s": 0}))[0] == 400


async def test_the_redirect_uri_must_be_the_one_the_authorization_request_named(api: Api) -> None:
    code = await code_of(api)
    status, other, _ = await exchange(api, code, redirect_uri="https://evil.example.com/oauth/callback")
    assert status == 400 and other["error"] == "invalid_grant"
    status, missing, _ = await exchange(api, code, redirect_uri=None)
    assert status == 400 and missing["error"] == "invalid_grant"
    assert (await exchange(api, code))[0] == 200  # refusals did not use the code up
    unnamed = await code_of(api, redirect_uri=None)  # the app's only registered URI, named by neither request
    assert (await exchange(api, unnamed, redirect_uri=None))[0] == 200


async def test_a_wrong_secret_is_invalid_client_and_two_ways_of_authenticating_are_refused(api: Api) -> None:
    code = await code_of(api)
    status, refused, headers = await exchange(api, code, headers=basic(secret="nope"))
    assert status == 401 and refused["error"] == "invalid_client" and "WWW-Authenticate" in headers
    status, refused, _ = await exchange(api, code, headers={}, client_id="sandbox-client", client_secret="nope")
    assert status == 401 and refused["error"] == "invalid_client"
    status, both, _ = await exchange(api, code, client_secret=SECRET)
    assert status == 400 and both["error"] == "invalid_request"
    status, none, _ = await exchange(api, "", headers={})
    assert status == 401 and none["error"] == "invalid_client"
    status, no_code, _ = await exchange(api, "")
    assert status == 400 and no_code["error"] == "invalid_request"
    assert (await exchange(api, code))[0] == 200


async def test_a_code_is_refused_to_another_client(make_api: MakeApi) -> None:
    agent = UserSettings(email="agent@acme.com", api_key="k", role="admin")
    apps = [OAuthAppSettings(client_id=c, client_secret=f"{c}-secret", user="agent@acme.com") for c in ("one", "two")]
    api = await make_api(accounts=[AccountSettings(domain="acme", users=[agent], oauth_apps=apps)])
    code = await code_of(api, client_id="one", redirect_uri="https://one.example.com/cb?tenant=9")
    status, refused, _ = await exchange(api, code, headers=basic("two", "two-secret"),
                                        redirect_uri="https://one.example.com/cb?tenant=9")
    assert status == 400 and refused["error"] == "invalid_grant"
    status, location = await authorize(api, client_id="one", redirect_uri="https://one.example.com/cb?tenant=9")
    assert status == 302 and sent_back(location)["tenant"] == "9"  # the URI's own query is kept
    status, _ = await authorize(api, client_id="one", redirect_uri=None)  # none registered: it must be named
    assert status == 400


async def test_an_untrustworthy_request_redirects_nowhere(api: Api) -> None:
    for overrides in ({"client_id": "unknown"}, {"client_id": None},
                      {"redirect_uri": "https://evil.example.com/oauth/callback"},
                      {"redirect_uri": CALLBACK + "#fragment"}, {"redirect_uri": "/oauth/callback"}):
        status, location = await authorize(api, **overrides)
        assert (status, location) == (400, None), overrides
    query = urlencode({"redirect_uri": CALLBACK, "response_type": "code", "scope": "offline"})
    twice = await api.call("GET", f"/oauth/authorize?client_id=sandbox-client&client_id=sandbox-client&{query}",
                           auth=None)
    assert twice.status == 400 and "Location" not in twice.headers
    unknown_host = await api.call("GET", "/oauth/authorize?client_id=sandbox-client", auth=None,
                                  host="other.gorgias.com")
    assert unknown_host.status == 404


async def test_other_refusals_come_back_to_the_redirect_uri_with_the_state(api: Api) -> None:
    cases = [({"response_type": "token"}, "unsupported_response_type"),
             ({"response_type": None}, "invalid_request"),
             ({"scope": None}, "invalid_scope"),
             ({"scope": "openid  offline"}, "invalid_scope")]
    for overrides, error in cases:
        status, location = await authorize(api, **overrides)
        back = sent_back(location)
        assert status == 302 and (back["error"], back["state"]) == (error, "st-42"), overrides
        assert "code" not in back
    query = urlencode({"response_type": "code", "client_id": "sandbox-client", "redirect_uri": CALLBACK,
                       "scope": "offline"})
    twice = await api.call("GET", f"/oauth/authorize?{query}&scope=openid", auth=None)
    assert twice.status == 302 and sent_back(twice.headers["Location"])["error"] == "invalid_request"
    _, described = await api.admin("GET", "oauth")
    assert described["codes_issued"] == 0
