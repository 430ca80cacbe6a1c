"""Smoke test of the built image (deploy/Dockerfile) against the test broker and the sandbox.

Runs only when GORGIAS_WORKER_IMAGE names a built image (`make image-test` builds it and sets it).
The container runs the way the Kubernetes manifests run it: its own non-root user, a read-only root
filesystem with a tmpfs /tmp, the config mounted read-only, the API key from the environment.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.support import http
from tests.support.kafka_io import create_topics, publish, read_json, wait_for
from tests.support.ports import free_port
from tests.support.processes import API_KEY, ROOT, SandboxProcess
from tests.support.scenario import ticket

pytestmark = pytest.mark.integration

IMAGE = os.environ.get("GORGIAS_WORKER_IMAGE", "")
ENGINE = ROOT / "deploy" / "image" / "engine.sh"
if not IMAGE:
    pytest.skip("GORGIAS_WORKER_IMAGE is not set: run `make image-test`", allow_module_level=True)


def engine(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(ENGINE), *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{ENGINE.name} {' '.join(args)} -> {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxProcess]:
    process = SandboxProcess(rate_limit="off").start()
    try:
        yield process
    finally:
        process.stop()


def run_args(config: Path) -> list[str]:
    return ["--network", "host", "--read-only", "--tmpfs", "/tmp", "-e", f"GORGIAS_API_KEY={API_KEY}",
            "-v", f"{config}:/etc/gorgias-worker/config.yaml:ro,Z"]


def test_the_image_carries_schemas_in_sync_with_its_models() -> None:
    done = engine("run", "--rm", "--read-only", IMAGE, "schemas")
    assert "schemas are up to date" in done.stdout


async def test_the_worker_runs_non_root_on_a_read_only_root_delivers_and_stops_cleanly(
    kafka_bootstrap: str, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:10]
    source, responses, web_port = f"src-{run}", f"resp-{run}", free_port()
    doc: dict[str, Any] = {
        "kafka": {"bootstrap_servers": kafka_bootstrap, "group_id": f"g-{run}", "control_topic": f"control-{run}"},
        "worker": {"web_port": web_port, "shutdown_grace_s": 10},
        "destinations": [{
            "name": "tickets", "source_topics": [source],
            "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
                           "base_url": sandbox.url, "rate_limit": {"enabled": False}},
            "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
            "response_webhook": {"enabled": True, "topic": responses},
            "dead_letter_topic": f"dlq-{run}",
        }],
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(doc))
    config.chmod(0o644)
    await create_topics(kafka_bootstrap, [source])
    name = f"gorgias-worker-smoke-{run}"
    engine("run", "-d", "--name", name, *run_args(config), IMAGE)
    try:
        async def ready() -> bool:
            state = engine("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            assert state == "running", engine("logs", name, check=False).stderr[-3000:]
            try:
                return http.get(f"http://127.0.0.1:{web_port}/health/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(ready, timeout=90, interval=0.5)
        assert engine("exec", name, "id", "-u").stdout.strip() == "10001"
        probe = engine("exec", name, "touch", "/opt/gorgias-worker/probe", check=False)
        assert probe.returncode != 0 and "Read-only file system" in probe.stderr

        await publish(kafka_bootstrap, source, [ticket(1)])
        events = await read_json(kafka_bootstrap, responses, 1, timeout=60)
        assert events[0]["outcome"] == "delivered", orjson.dumps(events[0])
        assert len(sandbox.state()["tickets"]) >= 1

        engine("kill", "--signal", "TERM", name)
        assert engine("wait", name, timeout=60).stdout.strip() == "0", engine("logs", name).stderr[-3000:]
        logs = engine("logs", name)
        assert API_KEY not in logs.stdout + logs.stderr
    finally:
        engine("rm", "--force", name, check=False)
