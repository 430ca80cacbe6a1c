"""Two deployments on one broker, with the same destination names, never pause each other."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiokafka
import pytest

from tests.support.kafka_io import committed, publish, read_json, wait_for
from tests.support.scenario import Scenario
from worker.core.config.deployment import Store
from worker.core.config.kafka import KafkaSettings
from worker.kafka.control import UNSCOPED_CONTROL_TOPIC, control_value, send_command
from worker.tools import demo

pytestmark = pytest.mark.integration


def ticket(i: int) -> dict[str, Any]:
    return {"subject": f"Request {i}", "external_id": f"dep-{i}", "channel": "api", "via": "api",
            "from_agent": False, "customer": {"email": "jane@example.com"},
            "messages": [{"channel": "api", "via": "api", "from_agent": False,
                          "sender": {"email": "jane@example.com"}, "body_text": f"body {i}"}]}


def deployment_config(s: Scenario, group: str, control_topic: str | None, name: str = "ticket-tags") -> dict[str, Any]:
    doc = s.config(s.destination(name))
    doc["kafka"]["group_id"] = group
    if control_topic is None:
        del doc["kafka"]["control_topic"]
    else:
        doc["kafka"]["control_topic"] = control_topic
    return doc


async def delivered(s: Scenario, group: str, name: str, total: int) -> bool:
    return sum((await committed(s.bootstrap, f"{group}.{name}", s.source)).values()) >= total


@pytest.mark.parametrize("shared_control_topic", [False, True], ids=["own-topics", "one-topic-for-both"])
async def test_pausing_a_destination_in_one_deployment_leaves_the_other_s_namesake_running(
    scenario: Scenario, run_worker: Any, shared_control_topic: bool,
) -> None:
    s = scenario
    await s.create_topics()
    run = uuid.uuid4().hex[:8]
    blue, green = f"blue-{run}", f"green-{run}"
    topic = f"control-{run}" if shared_control_topic else None
    blue_rt = await run_worker(deployment_config(s, blue, topic))
    green_rt = await run_worker(deployment_config(s, green, topic))

    await send_command(blue_rt.config.kafka, "ticket-tags", False)
    assert await wait_for(lambda: not blue_rt.pipelines["ticket-tags"].active, 30)
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(6)])

    assert await wait_for(lambda: delivered(s, green, "ticket-tags", 6), 60), "green stopped with blue"
    assert green_rt.pipelines["ticket-tags"].active
    assert not blue_rt.pipelines["ticket-tags"].active
    assert await committed(s.bootstrap, f"{blue}.ticket-tags", s.source) == {}  # blue sent nothing

    await send_command(green_rt.config.kafka, "ticket-tags", True)  # green's word is not blue's
    await send_command(blue_rt.config.kafka, "ticket-tags", True)
    assert await wait_for(lambda: delivered(s, blue, "ticket-tags", 6), 60)
    events = await read_json(s.bootstrap, s.responses, 12)  # both write to one response topic
    assert Counter(e["deployment"] for e in events) == {blue: 6, green: 6}
    assert len({e["event_id"] for e in events}) == 12  # the same records, told apart by deployment
    expected = f"control-{run}" if shared_control_topic else f"{blue}.control"
    assert blue_rt.config.kafka.store_topic(Store.CONTROL) == expected


async def test_an_old_unscoped_pause_is_not_applied_and_is_named_in_a_warning(
    scenario: Scenario, run_worker: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    s = scenario
    await s.create_topics()
    name = f"tags-{uuid.uuid4().hex[:8]}"
    await send_unscoped(s.bootstrap, name, active=False)

    with caplog.at_level(logging.WARNING, logger="worker.service.runtime"):
        runtime = await run_worker(deployment_config(s, s.group, None, name))
    assert runtime.pipelines[name].active
    warnings = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert len(warnings) == 1
    assert f"on {UNSCOPED_CONTROL_TOPIC}" in warnings[0] and f"gorgias-worker pause {name}" in warnings[0]
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
    assert await wait_for(lambda: delivered(s, s.group, name, 3), 60)


def test_the_demo_runs_beside_a_paused_namesake_in_another_deployment(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(demo, "WORK", tmp_path)  # its logs and record files
    prefix = f"demo-{uuid.uuid4().hex[:8]}"
    own_topic = f"gorgias-{prefix}.control"  # the demo's deployment is gorgias-<prefix>: its control topic
    for name in ("support-tickets", "ticket-fields"):
        # another deployment pointed at the demo's very control topic, and a pause of the old format
        other = KafkaSettings(bootstrap_servers=kafka_bootstrap, group_id="someone-else", control_topic=own_topic)
        asyncio.run(send_command(other, name, False))
        asyncio.run(send_unscoped(kafka_bootstrap, name, active=False))

    assert demo.run_demo(kafka_bootstrap, prefix) == 0
    events = [line for line in capsys.readouterr().out.splitlines() if "  records=" in line]
    assert sum("  support-tickets  " in e for e in events) == 13  # every call of both destinations answered
    assert sum("  ticket-fields  " in e for e in events) == 3


async def send_unscoped(bootstrap: str, name: str, active: bool) -> None:
    await send_command(KafkaSettings(bootstrap_servers=bootstrap, control_topic=UNSCOPED_CONTROL_TOPIC),
                       "placeholder", True)  # the topic exists, compacted, as an old worker made it
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:  # what a worker before deployments wrote on the old default topic: keyed by the name alone
        await producer.send_and_wait(UNSCOPED_CONTROL_TOPIC, control_value(active), key=name.encode())
    finally:
        await producer.stop()
