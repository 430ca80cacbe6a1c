"""TLS to Kafka against a real broker's TLS listeners, with certificates the test makes (``cryptography``).

Delivery works over SSL, SASL_SSL with SCRAM, and mutual TLS with a client certificate whose key is
encrypted. A wrong CA, an expired broker certificate, a certificate for another host, a missing or
expired client certificate and a wrong SASL password each stop `gorgias-worker run` at start, and each
command that touches Kafka, with one line naming the setting to change: no traceback, and neither the
SASL password nor the key password.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from tests.support.kafka_io import create_topics, publish, read_json, wait_for
from tests.support.lifetime import ends_with_this_process
from tests.support.manifests import container, helm_template, objects, one
from tests.support.processes import API_KEY, ROOT, SandboxProcess, WorkerProcess
from tests.support.scenario import Scenario, ticket, wait_committed
from tests.support.tls import KEY_PASSWORD, TlsBroker
from worker.tools.cli import app

pytestmark = pytest.mark.integration

SASL_PASSWORD = "worker-secret"  # the SCRAM user every test broker knows
WRONG_PASSWORD = "not-the-worker-secret-1d7a"
SECRETS = (SASL_PASSWORD, WRONG_PASSWORD, KEY_PASSWORD, API_KEY)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    broker = TlsBroker(tmp_path_factory.mktemp("kafka-tls")).start()
    try:
        yield broker
    finally:
        broker.stop()


def tls_settings(lab: TlsBroker, case: str) -> dict[str, Any]:
    """The ``kafka`` settings (besides group and control topic) of each case."""
    ssl = {"security_protocol": "SSL", "ssl_cafile": str(lab.ca)}
    cert, key = lab.client_encrypted
    client = {"ssl_certfile": str(cert), "ssl_keyfile": str(key), "ssl_key_password_file": str(lab.key_password_file)}
    sasl = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "worker",
            "sasl_password_env": "KAFKA_PASSWORD"}
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "ssl": ("SSL", ssl),
        "sasl-ssl-scram": ("SASL_SSL", {**ssl, **sasl}),
        "mutual-tls": ("MTLS", {**ssl, **client}),
        "wrong-ca": ("SASL_SSL", {**ssl, **sasl, "ssl_cafile": str(lab.other_ca)}),
        "wrong-password": ("SASL_SSL", {**ssl, **sasl, "sasl_password_env": "WRONG_KAFKA_PASSWORD"}),
        "expired": ("EXPIRED", {**ssl, **client}),
        "wrong-host": ("WRONG_HOST", {**ssl, **client}),
        "no-client-certificate": ("MTLS", ssl),
        "expired-client-certificate": ("MTLS", {**ssl, "ssl_certfile": str(lab.client_expired[0]),
                                                "ssl_keyfile": str(lab.client_expired[1])}),
    }
    listener, settings = cases[case]
    return {"bootstrap_servers": lab.bootstrap(listener), **settings}


def config_for(s: Scenario, lab: TlsBroker, case: str) -> dict[str, Any]:
    doc = s.config(s.destination())
    doc["kafka"].update(tls_settings(lab, case))
    doc["worker"].update(log_format="json", broker_wait_s=20)
    return doc


ENV = {"KAFKA_PASSWORD": SASL_PASSWORD, "WRONG_KAFKA_PASSWORD": WRONG_PASSWORD, "KAFKA_BOOTSTRAP_SERVERS": ""}


@pytest.mark.parametrize("case", ["ssl", "sasl-ssl-scram", "mutual-tls"])
async def test_delivery_over_each_kind_of_tls(
    lab: TlsBroker, sandbox: SandboxProcess, tmp_path: Path, case: str
) -> None:
    s = Scenario(lab.broker.bootstrap, sandbox)  # topics are set up through the PLAINTEXT listener
    await create_topics(s.bootstrap, [s.source], partitions=2)
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(6)], key=lambda i, _: f"k{i}".encode())
    doc = config_for(s, lab, case)
    doc["worker"]["broker_wait_s"] = 120  # a loaded machine's TLS handshakes may take long; a problem fails at once
    config = s.write(tmp_path, doc)
    worker = WorkerProcess(config, s.web_port, env=ENV).start()
    try:
        await wait_committed(s, 6, timeout=90)
        events = await read_json(s.bootstrap, s.responses, 6, timeout=30)
        assert {e["outcome"] for e in events} == {"delivered"}
        assert len({(e["records"][0]["partition"], e["records"][0]["offset"]) for e in events}) == 6
        status = cli(["status", "-c", str(config)])  # a command that reads Kafka, over the same TLS
        assert status.returncode == 0, status.stderr
        assert s.source in status.stdout
    finally:
        worker.stop()
    assert sorted(t["external_id"] for t in sandbox.state()["tickets"]) == [f"req-{i}" for i in range(6)]
    output = worker.output()
    assert "Traceback" not in output
    for secret in SECRETS:
        assert secret not in output + status.stdout + status.stderr


PROBLEMS = {
    "wrong-ca": ("kafka.ssl_cafile", "not signed by a CA"),
    "expired": ("kafka.ssl_cafile", "certificate has expired"),
    "wrong-host": ("kafka.bootstrap_servers", "not valid for 127.0.0.1"),
    "no-client-certificate": ("kafka.ssl_certfile", "requires a client certificate"),
    "expired-client-certificate": ("kafka.ssl_certfile", "refused the client certificate"),
    "wrong-password": ("kafka.sasl_password_env", "login as worker with SCRAM-SHA-512 refused"),
}


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            lines.append({"level": "raw", "msg": line})
    return lines


@pytest.mark.parametrize("case", list(PROBLEMS))
async def test_a_tls_problem_stops_the_worker_at_start_with_one_line(
    lab: TlsBroker, sandbox: SandboxProcess, tmp_path: Path, case: str
) -> None:
    s = Scenario(lab.broker.bootstrap, sandbox)
    worker = WorkerProcess(s.write(tmp_path, config_for(s, lab, case)), s.web_port, env=ENV)
    worker.start(wait_ready=False)
    try:
        assert worker.wait(timeout=60) == 1
    finally:
        worker.stop()
    output = worker.output()
    lines = json_lines(output)
    errors = [line for line in lines if line["level"] in ("error", "critical", "raw")]
    setting, what = PROBLEMS[case]
    assert len(errors) == 1, output
    assert errors[0]["msg"].startswith("cannot start: Kafka at ") and setting in errors[0]["msg"]
    assert what in errors[0]["msg"]
    assert "Traceback" not in output
    for secret in SECRETS:
        assert secret not in output


def cli(args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GORGIAS_API_KEY": API_KEY, **ENV, **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "worker", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, check=False, preexec_fn=ends_with_this_process())


@pytest.mark.parametrize("case", list(PROBLEMS))
def test_a_tls_problem_is_one_error_line_in_commands_that_touch_kafka(
    lab: TlsBroker, sandbox: SandboxProcess, tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    s = Scenario(lab.broker.bootstrap, sandbox)
    config = str(s.write(tmp_path, config_for(s, lab, case)))
    setting, what = PROBLEMS[case]
    for command in (["status", "-c", config], ["pause", "dest", "-c", config]):
        done = CliRunner().invoke(app, command)  # in this process: the same code as the command line
        assert done.exit_code == 1, (command, done.stdout, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: Kafka at "), (command, done.stderr)
        assert setting in lines[0] and what in lines[0]
        assert done.exception is None or isinstance(done.exception, SystemExit)
        for secret in SECRETS:
            assert secret not in done.stdout + done.stderr


async def test_the_helm_charts_tls_values_are_a_mutual_tls_config_the_worker_connects_with(
    lab: TlsBroker, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    """deploy/helm/gorgias-worker with kafkaTls (CA, client certificate, encrypted key and its password from
    one Secret): the files where the chart mounts them and the GORGIAS_WORKER__KAFKA__SSL_* variables it sets
    make the config `status` reaches the mutual-TLS listener with; without those variables it cannot."""
    s = Scenario(lab.broker.bootstrap, sandbox)
    await create_topics(s.bootstrap, [s.source], partitions=1)
    mounted = tmp_path / "kafka-tls"  # stands for the Secret's volume
    mounted.mkdir()
    cert, key = lab.client_encrypted
    files = {"ca.crt": lab.ca, "tls.crt": cert, "tls.key": key, "key-password": lab.key_password_file}
    for name, source in files.items():
        shutil.copy(source, mounted / name)
    doc = s.config(s.destination())
    # Helm merges these over the chart's default config (SASL_SSL with SCRAM): null drops a default's key.
    doc["kafka"].update(bootstrap_servers=lab.bootstrap("MTLS"), security_protocol="SSL", sasl_mechanism=None,
                        sasl_username=None, sasl_password_env=None)
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({
        "config": doc, "autoscaling": {"mode": "none"},
        "kafkaTls": {"enabled": True, "clientCertificate": True, "keyPasswordKey": "key-password",
                     "mountPath": str(mounted)},
    }), encoding="utf-8")
    objs = helm_template(values)
    path = tmp_path / "config.yaml"
    path.write_text(one(objects(objs, "ConfigMap"), "ConfigMap")["data"]["config.yaml"], encoding="utf-8")
    env = {e["name"]: e["value"] for e in container(one(objs, "Deployment"))["env"]
           if e["name"].startswith("GORGIAS_WORKER__KAFKA__")}
    assert sorted(env) == [f"GORGIAS_WORKER__KAFKA__SSL_{k}" for k in ("CAFILE", "CERTFILE", "KEYFILE",
                                                                        "KEY_PASSWORD_FILE")]
    runs: list[subprocess.CompletedProcess[str]] = []

    def status_answers() -> bool:  # a fresh broker may not have its group coordinator yet: not a TLS matter
        runs.append(cli(["status", "-c", str(path)], env))
        return runs[-1].returncode == 0 or "CoordinatorNotAvailable" not in runs[-1].stderr

    assert await wait_for(lambda: asyncio.to_thread(status_answers), 120, interval=1)
    status = runs[-1]
    assert status.returncode == 0, status.stderr
    assert s.source in status.stdout
    without = cli(["status", "-c", str(path)])  # the same file, without what the chart sets
    assert without.returncode != 0 and "kafka.ssl_cafile" in without.stderr, without.stderr
    assert KEY_PASSWORD not in status.stdout + status.stderr + without.stderr
