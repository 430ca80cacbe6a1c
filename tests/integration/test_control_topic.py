"""The control topic through the real broker: a worker that starts applies the saved state once."""

from __future__ import annotations

import pytest

from tests.support.kafka_io import wait_for
from worker.core.config.kafka import KafkaSettings
from worker.kafka.control import ControlReader, send_command

pytestmark = pytest.mark.integration


async def test_a_starting_reader_applies_each_destinations_last_command_once(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, control_topic=unique_topic)
    for active in (False, True, False, True, False):
        await send_command(settings, "tickets", active)
    await send_command(settings, "fields", False)
    await send_command(settings, "fields", True)

    applied: list[tuple[str, bool]] = []
    reader = ControlReader(settings, lambda name, active: applied.append((name, active)))
    await reader.start()
    try:
        # the history is not replayed: each destination gets its saved state, once (one log line each)
        assert sorted(applied) == [("fields", True), ("tickets", False)]
        await send_command(settings, "tickets", True)
        assert await wait_for(lambda: len(applied) >= 3, 60, interval=0.05)
        assert applied[2:] == [("tickets", True)]  # commands sent later are followed as they come
    finally:
        await reader.stop()
