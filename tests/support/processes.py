"""Real processes for end-to-end tests: the Gorgias sandbox and the worker (`python -m worker ...`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import http
from tests.support.lifetime import ends_with_this_process
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sandbox-api-key"


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered:\n{tail}")
        try:
            if http.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log else ""
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f}s:\n{tail}")


class SandboxProcess:
    """`gorgias-worker sandbox` in its own process, driven through its admin API."""

    def __init__(self, rate_limit: str = "off", extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="sandbox-", suffix=".log")[1])
        self.args = ["--port", str(self.port), "--rate-limit", rate_limit, *(extra or [])]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SandboxProcess:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "sandbox", *self.args], stdout=out, stderr=subprocess.STDOUT,
                cwd=ROOT, preexec_fn=ends_with_this_process(),
            )
        wait_http(f"{self.url}/__admin/health", 30, self.proc, self.log)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        r = http.request(method, f"{self.url}/__admin/{path}", json=json, timeout=10)
        r.raise_for_status()
        return r.json() if r.content else None

    def reset(self) -> None:
        self.admin("POST", "reset")

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "state")
        return result

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "counters")
        return result


class WorkerProcess:
    """`gorgias-worker run --config FILE` in its own process."""

    def __init__(self, config_path: Path, web_port: int, env: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.web_port = web_port
        self.env = {**os.environ, "GORGIAS_API_KEY": API_KEY, **(env or {})}
        self.log = Path(tempfile.mkstemp(prefix="worker-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, wait_ready: bool = True) -> WorkerProcess:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "run", "--config", str(self.config_path)],
            stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT,
            preexec_fn=ends_with_this_process(),
        )
        out.close()
        if wait_ready:  # generous: a loaded machine starts Python slowly; a worker that exits fails at once
            wait_http(f"{self.url}/health/ready", 120, self.proc, self.log)
        return self

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def gorgias(sandbox: SandboxProcess, method: str, path: str, json: Any = None) -> Any:
    """Call the sandbox's Gorgias API as account acme (to set up state a test needs)."""
    r = http.request(
        method, f"{sandbox.url}{path}", json=json, auth=("agent@acme.com", API_KEY),
        headers={"Host": "acme.gorgias.com"}, timeout=10,
    )
    r.raise_for_status()
    return r.json() if r.content else None
