"""The console for browser tests: a sandbox and a worker process serving the page, and what a page said."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from cryptography.fernet import Fernet
from playwright.sync_api import ConsoleMessage, Dialog, Page

from tests.support import http
from tests.support.kafka_io import create_topics, publish
from tests.support.ports import free_port
from tests.support.processes import SandboxProcess, WorkerProcess

T = TypeVar("T")

TOKEN = "console-browser-token-8c2f"


DESKTOP = {"width": 1280, "height": 800}


PHONE = {"width": 390, "height": 844}


@dataclass
class Console:
    """A worker (with a control token) and the sandbox behind it, and the topics of one test module."""

    bootstrap: str
    sandbox: SandboxProcess
    worker: WorkerProcess
    run: str
    topics: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.worker.url}/"

    def api(self, method: str, path: str, json: Any = None) -> Any:
        """Call the worker's control API as a script would (with the token)."""
        r = http.request(method, f"{self.worker.url}{path}", json=json, timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"})
        return r.json() if r.content else None

    def publish(self, topic: str, records: list[Any]) -> None:
        run_async(publish(self.bootstrap, topic, records))


def start_console(bootstrap: str, tmp: Path, topics: dict[str, list[Any]],
                  destinations: Callable[[str, str], list[dict[str, Any]]] | None = None) -> Console:
    """Sandbox, topics with records, and a worker whose config names the sandbox's account ``acme``."""
    run = uuid.uuid4().hex[:8]
    named = {short: f"{short}-{run}" for short in topics}
    run_async(create_topics(bootstrap, list(named.values()), partitions=2))
    for short, records in topics.items():
        if records:
            run_async(publish(bootstrap, named[short], records))
    sandbox = SandboxProcess(rate_limit="off").start()
    port = free_port()
    doc = {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"console-{run}"},
        "worker": {"web_port": port, "log_format": "text", "shutdown_grace_s": 5,
                   "control_token_env": "CONSOLE_TOKEN", "secrets_key_env": "CONSOLE_SECRETS_KEY"},
        "credentials": {"acme": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
                                 "base_url": sandbox.url, "rate_limit": {"enabled": False}}},
        "destinations": (destinations or tags_destination)(sandbox.url, run),
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    # (KAFKA_BOOTSTRAP_SERVERS would override the config's broker: the session's, or this module's own)
    env = {"CONSOLE_TOKEN": TOKEN, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "CONSOLE_SECRETS_KEY": Fernet.generate_key().decode()}  # saved credentials' secrets are encrypted
    worker = WorkerProcess(path, port, env=env).start()
    console = Console(bootstrap, sandbox, worker, run, named)
    return console


def stop_console(console: Console) -> None:
    console.worker.stop()
    console.sandbox.stop()


class Watched:
    """What a page said on the browser's console and the dialogs it opened."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


def screenshots() -> Path:
    """Where the flow's screenshots go: $CONSOLE_SCREENSHOTS, else a temporary folder."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or Path(os.environ.get("TMPDIR", "/tmp")) / "console-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end in a thread of its own (Playwright's sync API keeps a loop in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def tags_destination(sandbox_url: str, run: str) -> list[dict[str, Any]]:
    """One paused destination of the config file: tags for tickets, on the sandbox's account acme."""
    return [{
        "name": "ticket-tags", "source_topics": [f"tags-{run}"], "active": False, "credential": "acme",
        "endpoint": {"template": "add_ticket_tags"},
        "response_webhook": {"enabled": True, "topic": f"responses-{run}"},
        "dead_letter_topic": f"dead-{run}",
    }]
