"""The control API is safe by default: loopback unless configured, POST routes behind a bearer token."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from worker.core.config.base import ConfigError
from worker.core.config.worker_config import WorkerConfig, parse_config
from worker.host.environment import check_secrets, resolve_secret
from worker.service.control_api import create_control_app
from worker.service.runtime import Runtime

TOKEN = "ctl-7f3a9c1e5b2d8f40"
BASE: dict[str, Any] = {
    "destinations": [{
        "name": "support-tickets",
        "source_topics": ["nexset.support-requests"],
        "credential": {"domain": "mystore", "username": "agent@mystore.com", "api_key_env": "CTL_TEST_KEY"},
        "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
    }]
}
POST_ROUTES = [
    "/destinations/support-tickets/activate",
    "/destinations/support-tickets/pause",
    "/destinations/support-tickets/test",
    "/destinations/support-tickets/preview",
    "/validate",
]


def config(**worker: Any) -> WorkerConfig:
    doc = copy.deepcopy(BASE)
    doc["worker"] = worker
    return parse_config(doc)


def test_the_default_binds_loopback_and_needs_no_token() -> None:
    cfg = config()
    assert cfg.worker.web_host == "127.0.0.1"
    assert cfg.worker.control_token() is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "worker.example"])
def test_listening_beyond_loopback_without_a_token_is_refused_naming_the_setting(host: str) -> None:
    with pytest.raises(ConfigError) as err:
        config(web_host=host)
    (line,) = err.value.problems
    assert line.startswith("worker:") and "control_token_env" in line and "127.0.0.1" in line


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    assert config(web_host=host).worker.web_host == host


def test_a_token_from_env_or_file_allows_any_host(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTL_TOKEN", raising=False)
    cfg = config(web_host="0.0.0.0", control_token_env="CTL_TOKEN")
    assert check_secrets(cfg)[-1].startswith("worker.control_token: environment variable CTL_TOKEN is not set")
    monkeypatch.setenv("CTL_TOKEN", TOKEN)
    monkeypatch.setenv("CTL_TEST_KEY", "k-1234")
    assert check_secrets(cfg) == []
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    ref = config(web_host="0.0.0.0", control_token_file=str(path)).worker.control_token()
    assert ref is not None and resolve_secret(ref).get_secret_value() == TOKEN
    with pytest.raises(ConfigError, match="must not be written inline"):
        config(web_host="0.0.0.0", control_token=TOKEN)
    with pytest.raises(ConfigError, match="only one of control_token_env or control_token_file"):
        config(control_token_env="CTL_TOKEN", control_token_file=str(path))


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    runtime = Runtime(config(web_host="0.0.0.0", control_token_env="CTL_TOKEN"))
    app = create_control_app(runtime, token=SecretStr(TOKEN))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize("route", POST_ROUTES)
async def test_post_routes_answer_401_without_a_bearer_token(client: TestClient[Any, Any], route: str) -> None:
    for headers in ({}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}):
        resp = await client.post(route, json={}, headers=headers)
        assert resp.status == 401, headers
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in await resp.text()


@pytest.mark.parametrize("route", POST_ROUTES)
async def test_post_routes_answer_403_with_a_wrong_token(client: TestClient[Any, Any], route: str) -> None:
    resp = await client.post(route, json={}, headers={"Authorization": f"Bearer {TOKEN}x"})
    assert resp.status == 403
    assert TOKEN not in await resp.text()


async def test_the_right_token_reaches_the_route(client: TestClient[Any, Any]) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    resp = await client.post("/destinations/nowhere/pause", headers=auth)
    assert resp.status == 404  # past the guard: the route itself answers
    resp = await client.post("/destinations/support-tickets/preview", json={"records": []}, headers=auth)
    assert resp.status == 200 and (await resp.json())["items"] == []


async def test_read_only_routes_need_no_token(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/health/live")).status == 200
    assert (await client.get("/destinations")).status == 200
    assert (await client.get("/metrics")).status == 200


async def test_without_a_token_loopback_post_routes_stay_open() -> None:
    app = create_control_app(Runtime(config()))
    async with TestClient(TestServer(app)) as test_client:
        resp = await test_client.post("/destinations/nowhere/pause")
        assert resp.status == 404


async def test_the_token_never_appears_in_logs(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for value in (TOKEN, TOKEN + "x", TOKEN[:-1]):
        await client.post("/destinations/support-tickets/pause", headers={"Authorization": f"Bearer {value}"})
    await client.post("/destinations/nowhere/activate", headers={"Authorization": f"Bearer {TOKEN}"})
    assert caplog.records, "the requests should have logged something to check"
    for record in caplog.records:
        assert TOKEN[:-1] not in record.getMessage()


async def test_validate_route_answers_the_same_errors_as_the_cli(client: TestClient[Any, Any]) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bad = "destinations:\n  - name: x\n    source_topics: [t]\n    batchng: {}\n"
    resp = await client.post("/validate", data=bad, headers=auth)
    assert resp.status == 200
    doc = await resp.json()
    assert doc["ok"] is False
    (item,) = [e for e in doc["errors"] if e["path"] == "destinations[0].batchng"]
    assert item["line"].startswith("destinations[0].batchng: is not a known setting (did you mean `batching`?")
    assert item["message"].startswith("is not a known setting") and item["suggestion"] == "did you mean `batching`?"
    # the worker's environment never reaches the answer (a reference to a secret would echo it)
    leaky = copy.deepcopy(BASE)
    leaky["worker"] = {"web_port": "${CTL_SECRET_VALUE}"}
    os.environ["CTL_SECRET_VALUE"] = "sk-very-secret-1234"
    try:
        answer = await (await client.post("/validate", json=leaky, headers=auth)).text()
    finally:
        del os.environ["CTL_SECRET_VALUE"]
    assert "sk-very-secret-1234" not in answer and "CTL_SECRET_VALUE is referenced" in answer
    good = await client.post("/validate", json=BASE, headers=auth)
    assert (await good.json()) == {"ok": True, "errors": [], "warnings": [], "destinations": ["support-tickets"]}


def test_validate_says_how_the_control_api_is_protected(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from typer.testing import CliRunner

    from worker.tools.cli import app

    monkeypatch.setenv("CTL_TEST_KEY", "k-1234")
    monkeypatch.setenv("CTL_TOKEN", TOKEN)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    result = CliRunner().invoke(app, ["validate", "-c", str(path)])
    assert "control API on 127.0.0.1:6066 (POST routes open to this machine only)" in result.stdout
    result = CliRunner().invoke(app, ["validate", "-c", str(path), "--set", "worker.web_host=0.0.0.0",
                                      "--set", "worker.control_token_env=CTL_TOKEN"])
    assert "control API on 0.0.0.0:6066 (POST routes need the bearer token from env $CTL_TOKEN)" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    refused = CliRunner().invoke(app, ["run", "-c", str(path), "--set", "worker.web_host=0.0.0.0"])
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: worker: web_host 0.0.0.0 listens beyond this machine: set "
                                     "worker.control_token_env")


def _ready_metric(text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "gorgias_worker_ready")


async def test_the_ready_metric_follows_the_readiness_probe() -> None:
    runtime = Runtime(config())
    async with TestClient(TestServer(create_control_app(runtime))) as test_client:
        assert (await test_client.get("/health/ready")).status == 503
        assert _ready_metric(await (await test_client.get("/metrics")).text()) == 0
        runtime.ready.set()
        assert (await test_client.get("/health/ready")).status == 200
        assert _ready_metric(await (await test_client.get("/metrics")).text()) == 1
