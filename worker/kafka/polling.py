"""How a destination's consumer waits for records: cheaply while idle, at once when records come.

A worker runs one consumer per destination (its own consumer group), so what an idle consumer costs is
paid a thousand times on a worker with a thousand destinations. An idle consumer here costs:

* a **fetch** long poll every :data:`FETCH_MAX_WAIT_MS`: the broker holds the fetch until a record arrives
  on one of its partitions (then answers at once) or the wait is over, so a longer wait costs no latency,
  only fewer empty answers (aiokafka's default, 500 ms, is two requests a second per destination);
* a **heartbeat** every :data:`PIPELINE_HEARTBEAT_INTERVAL_MS` to its group's coordinator (the interval
  bounds how soon a member learns of a rebalance, not how soon a dead member is noticed: that is the
  session timeout, 10 s, kept);
* the pipeline's own loop, which waits :data:`IDLE_POLL_WAIT_S` for records when it holds none unfinished
  and nothing uncommitted (records end the wait at once, :func:`poll` is woken to stop) instead of
  waking every :data:`BUSY_POLL_WAIT_S` to tick windows, commit and apply back-pressure;
* aiokafka's fetch task, which otherwise wakes every 200 ms to look for work it is told of anyway
  (records consumed, assignment changed, partitions resumed, its own requests answered).

Measured in docs/benchmarks.md ("Many destinations on one worker").
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiokafka

# A pipeline with work in hand (records unfinished, a window to close, a commit due) looks at it this often.
BUSY_POLL_WAIT_S = 0.2
# A pipeline with nothing in hand waits this long for records; records, a stop or a failure end the wait.
IDLE_POLL_WAIT_S = 5.0
# The broker answers an idle fetch after this long (at once when a record arrives). Requests on the
# consumer's data connection wait behind it (ListOffsets for start_from, metadata), so it stays short of
# the session timeout; the group's own requests (heartbeats, commits) have a connection of their own.
FETCH_MAX_WAIT_MS = 3_000
# aiokafka's fetch task wakes this often when nothing tells it to (default 200 ms).
FETCH_TASK_TIMEOUT_MS = 2_000
PIPELINE_HEARTBEAT_INTERVAL_MS = 3_000


def consumer_options() -> dict[str, Any]:
    """A destination consumer's options beside :func:`worker.kafka.clients.make_consumer`'s."""
    return {
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "consumer_timeout_ms": FETCH_TASK_TIMEOUT_MS,
        "heartbeat_interval_ms": PIPELINE_HEARTBEAT_INTERVAL_MS,
    }


async def poll(consumer: aiokafka.AIOKafkaConsumer, timeout_s: float, max_records: int,
               wake: asyncio.Event) -> dict[aiokafka.TopicPartition, list[Any]]:
    """The records fetched within ``timeout_s`` (none when ``wake`` is set first: nothing is lost, records
    not handed out stay with the consumer for the next poll)."""
    if timeout_s <= BUSY_POLL_WAIT_S or wake.is_set():
        fetched: dict[aiokafka.TopicPartition, list[Any]] = await consumer.getmany(
            timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return fetched
    loop = asyncio.get_running_loop()
    fetch = loop.create_task(consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_records))
    woken = loop.create_task(wake.wait())
    try:
        await asyncio.wait((fetch, woken), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (fetch, woken):
            if not task.done():
                task.cancel()
        await asyncio.wait((fetch, woken))
    if fetch.cancelled():
        return {}
    records: dict[aiokafka.TopicPartition, list[Any]] = fetch.result()
    return records
