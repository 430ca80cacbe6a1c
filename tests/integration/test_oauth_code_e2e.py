"""The README's OAuth step 3 done literally against the sandbox (issue 25): the authorize URL opened as a
browser would (httpx, no redirect followed), the code exchanged with the README's curl command (httpx,
Basic), then the app saved with ``POST /credentials`` on a running worker process, a destination saved
and activated over REST, and records delivered with the app's Bearer tokens (the user's own API key and
fixed token revoked first); the client secret, the code and every token are on no topic and in no log."""

from __future__ import annotations

import re
import secrets
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.kafka_io import publish, read_json, read_to_end, topic_bytes, wait_for
from tests.support.processes import ROOT, WorkerProcess
from tests.support.scenario import Scenario, ready_status, ticket
from tests.support.secret_scan import secret_hits
from worker.host.secret_box import new_key

pytestmark = pytest.mark.integration

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-client-secret"
README_ORIGIN = "https://mystore.gorgias.com"
HOST = {"Host": "acme.gorgias.com"}  # the sandbox's account acme stands for the README's mystore


def step_three() -> tuple[str, list[str]]:
    """The README's authorize URL and its curl command's words (up to the pipe), as a user copies them."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    step = readme[readme.index("**3. The first refresh token"):readme.index("**4. ")]
    url = re.search(rf"^{re.escape(README_ORIGIN)}/oauth/authorize\?\S+$", step, re.MULTILINE)
    curl = re.search(r"^curl .*?(?=\|)", step, re.MULTILINE | re.DOTALL)
    assert url is not None and curl is not None, "README OAuth step 3 no longer has the URL and the curl"
    return url.group(0), shlex.split(curl.group(0).replace("\\\n", " "))


def curl_request(words: list[str], sandbox_url: str, code: str) -> dict[str, Any]:
    """What the README's ``curl URL -u ID:SECRET -d k=v ...`` sends, with the placeholders filled in."""
    fill = {"CLIENT_ID": CLIENT_ID, "$CLIENT_SECRET": CLIENT_SECRET, "CODE": code}
    data: dict[str, str] = {}
    request: dict[str, Any] = {"data": data}
    options = iter(words[1:])
    for word in options:
        if word == "-u":
            user, _, password = next(options).partition(":")
            request["auth"] = (fill.get(user, user), fill.get(password, password))
        elif word == "-d":
            key, _, value = next(options).partition("=")
            data[key] = fill.get(value, value)
        elif word.startswith(README_ORIGIN):
            request["url"] = sandbox_url + word[len(README_ORIGIN):]
    return request


def first_refresh_token(sandbox_url: str) -> tuple[str, list[str]]:
    """Step 3 against the sandbox: the refresh token, and every secret it handed out on the way."""
    url, curl = step_three()
    state = secrets.token_urlsafe(8)
    opened = url.replace(README_ORIGIN, sandbox_url).replace("CLIENT_ID", CLIENT_ID).replace("RANDOM", state)
    browser = httpx.get(opened, headers=HOST, follow_redirects=False, timeout=10)
    assert browser.status_code == 302, browser.text
    location = urlsplit(browser.headers["Location"])
    back = {k: v[0] for k, v in parse_qs(location.query).items()}
    named = parse_qs(urlsplit(opened).query)["redirect_uri"][0]
    assert f"{location.scheme}://{location.netloc}{location.path}" == named and back["state"] == state
    request = curl_request(curl, sandbox_url, back["code"])
    assert request["data"]["grant_type"] == "authorization_code" and request["data"]["redirect_uri"] == named
    token_url = request.pop("url")
    answer = httpx.post(token_url, headers=HOST, timeout=10, **request)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0 and "offline" in tokens["scope"]
    return tokens["refresh_token"], [back["code"], tokens["access_token"], tokens["refresh_token"]]


async def test_the_readme_exchange_gives_a_refresh_token_a_saved_app_delivers_with(
    scenario: Scenario, tmp_path: Path,
) -> None:
    s = scenario
    await s.create_topics()
    refresh_token, handed_out = first_refresh_token(s.sandbox.url)
    # from here on only the app's Bearer tokens open the account: the user's own key and fixed token are revoked
    s.sandbox.admin("PUT", "credentials", {"email": "agent@acme.com", "api_key": None, "oauth_token": None})

    doc = s.config()
    doc["destinations"] = []
    doc["worker"].update(secrets_key_env="GORGIAS_SECRETS_KEY", log_level="debug")
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port, {"GORGIAS_SECRETS_KEY": new_key()})
    worker.start(wait_ready=False)
    try:
        assert await wait_for(lambda: ready_status(worker) == 200, 120), worker.output()[-3000:]
        async with httpx.AsyncClient(base_url=worker.url, timeout=30) as api:
            app = {"name": "acme-app", "domain": "acme", "auth": "oauth_app", "client_id": CLIENT_ID,
                   "client_secret": CLIENT_SECRET, "refresh_token": refresh_token, "base_url": s.sandbox.url}
            created = await api.post("/credentials", json=app)
            assert created.status_code == 201, created.text
            destination = {**s.destination("app-dest"), "credential": "acme-app"}
            assert (await api.post("/destinations", json=destination)).status_code == 201
            assert (await api.post("/destinations/app-dest/activate")).status_code == 200
            await publish(s.bootstrap, s.source, [ticket(i) for i in range(5)])
            events = await read_json(s.bootstrap, s.responses, 5, timeout=90)
            shown = (await api.get("/credentials/acme-app")).text
    finally:
        worker.stop()

    assert sorted(e["destination"] for e in events) == ["app-dest"] * 5
    assert {e["outcome"] for e in events} == {"delivered"}
    assert await read_to_end(s.bootstrap, s.dead_letters) == []
    assert len(s.sandbox.state()["tickets"]) == 5
    server = s.sandbox.admin("GET", "oauth?tokens=true")
    assert server["refused"] == {} and server["tokens_issued"] >= 2  # the exchange's, then the worker's refresh

    places = {**await topic_bytes(s.bootstrap), "worker log": worker.output().encode(),
              "GET /credentials/acme-app": shown.encode()}
    handed_out += [CLIENT_SECRET, *server["issued"]]
    assert secret_hits(handed_out, places, user=CLIENT_ID) == []
