"""Forgetting a consumer group's committed offsets (``DELETE /destinations/NAME?forget_offsets=true``).

Kafka deletes a group's offsets only once the group has no member left, so this waits for every replica
to have stopped the destination's pipeline (each leaves the group as on SIGTERM), then deletes the group.
aiokafka's admin client has no public call for DeleteGroups: the request goes through its request
sender, the one private use, kept here.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import DeleteGroupsRequest

from worker.core.config.kafka import KafkaSettings
from worker.kafka.clients import client_options

GROUP_ID_NOT_FOUND = 69
NON_EMPTY_GROUP = 68
IDLE_STATES = ("Empty", "Dead")


async def forget_group(settings: KafkaSettings, group: str, within_s: float) -> str:
    """Delete ``group`` (and so its committed offsets) once it has no member, waiting up to ``within_s``;
    returns what happened in a few words (``forgotten``, ``no offsets``, or why not)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        deadline = time.monotonic() + within_s
        while True:
            node = await admin.find_coordinator(group)
            (described,) = await admin.describe_consumer_groups([group], group_coordinator_id=node)
            state = described.groups[0][2] if described.groups else "Dead"
            if state in IDLE_STATES:
                response = await admin._send_request(DeleteGroupsRequest([group]), node)  # private: see above
                code = response.results[0][1]
                if code == 0:
                    return "forgotten"
                if code == GROUP_ID_NOT_FOUND:
                    return "no offsets"
                if code != NON_EMPTY_GROUP:
                    raise for_code(code)(f"deleting consumer group {group}")
            if time.monotonic() >= deadline:
                return (f"kept: group {group} still has members after {within_s:.0f} s (a replica has not stopped "
                        "the destination yet); delete it later with kafka-consumer-groups.sh --delete --group "
                        f"{group}")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
