"""The server entry points: create_app with pinned clocks, start_sandbox, serve (the CLI's blocking call)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
from aiohttp.test_utils import TestClient, TestServer

from gorgias_sandbox.server import create_app, start_sandbox
from gorgias_sandbox.settings import SandboxSettings
from gorgias_sandbox.timestamps import Timestamps, format_timestamp, normalize_timestamp
from tests.support.lifetime import ends_with_this_process
from tests.support.sandbox_api import AGENT, HOST, incoming_ticket

ROOT = Path(__file__).resolve().parents[3]


def test_timestamp_format() -> None:
    assert format_timestamp(datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)) == "2024-05-01T10:00:00.123456+00:00"
    plus2 = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2024, 5, 1, 12, 0, tzinfo=plus2)) == "2024-05-01T10:00:00.000000+00:00"
    assert normalize_timestamp("2024-05-01T12:00:00+02:00") == "2024-05-01T10:00:00.000000+00:00"
    assert normalize_timestamp("2024-05-01T10:00:00") == "2024-05-01T10:00:00.000000+00:00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", Timestamps().now())


async def test_wall_clock_can_be_pinned() -> None:
    moment = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    app = create_app(SandboxSettings(rate_limit="off"), wall=lambda: moment)
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/api/tickets", json=incoming_ticket(), headers={"Host": HOST, "Authorization": AGENT})
        ticket = await resp.json()
    assert ticket["created_datetime"] == ticket["messages"][0]["sent_datetime"] == "2024-05-01T10:00:00.123456+00:00"


async def test_start_sandbox_reports_url_and_port() -> None:
    running = await start_sandbox(SandboxSettings(), port=0)
    try:
        assert running.url == f"http://127.0.0.1:{running.port}" and running.port > 0
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{running.url}/__admin/health")).json() == {"status": "ok"}
            r = await client.get(f"{running.url}/api/account", headers={"Host": HOST, "Authorization": AGENT})
            assert r.status_code == 200 and r.headers["X-Gorgias-Account-Api-Call-Limit"] == "1/40"
    finally:
        await running.stop()


def test_serve_runs_until_sigterm() -> None:
    code = ("from gorgias_sandbox.server import serve; "
            "serve('127.0.0.1', 0, '10/20s', '503=0@POST', 3, ['globex:ops@globex.com:k1'])")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=ends_with_this_process())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert match, line + (proc.stderr.read() if proc.stderr else "")
        url = match.group(1)
        r = httpx.get(f"{url}/api/account", headers={"Host": "globex.gorgias.com",
                                                     "Authorization": "Basic b3BzQGdsb2JleC5jb206azE="})
        assert r.status_code == 200 and r.headers["X-Gorgias-Account-Api-Call-Limit"] == "1/10"
        assert httpx.get(f"{url}/api/account", headers={"Host": HOST}).status_code == 404
        assert httpx.get(f"{url}/__admin/faults").json()["seed"] == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
