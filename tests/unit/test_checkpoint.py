"""The crash-recovery checkpoint, broker-free: its codec in commit metadata, the outcome watermarks, and
which checkpoint a commit carries (the chunk's marks, a dead owner's inherited scan)."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from worker.core.offsets import TopicPartitionKey
from worker.kafka.recovery import (
    MAX_METADATA_BYTES,
    ConsumptionMarks,
    Watermarks,
    consumed_upto,
    decode_checkpoint,
    encode_checkpoint,
)

SOURCE = TopicPartitionKey("src", 0)
RESPONSES = ("responses", 0)
LETTERS = ("letters", 2)

scans = st.dictionaries(st.tuples(st.sampled_from(["responses", "letters", "a.b-c"]), st.integers(0, 63)),
                        st.integers(0, 2**40), max_size=8)


@given(scans, st.none() | st.integers(0, 2**40))
def test_a_checkpoint_reads_back_as_written(scan: dict[tuple[str, int], int], upto: int | None) -> None:
    text = encode_checkpoint(scan, upto)
    assert decode_checkpoint(text) == scan
    assert consumed_upto(text) == upto


def test_metadata_of_someone_else_or_nothing_is_no_checkpoint() -> None:
    for foreign in (None, "", "not json", "[1]", '{"v": 2, "scan": {}}', '{"v": 1, "scan": []}', "null"):
        assert decode_checkpoint(foreign) == {}
        assert consumed_upto(foreign) is None
    # a malformed entry is skipped, the rest is kept
    text = orjson.dumps({"v": 1, "scan": {"t": {"0": 5, "x": 6, "1": "7"}, "u": 3}}).decode()
    assert decode_checkpoint(text) == {("t", 0): 5}


def test_a_checkpoint_too_large_for_kafka_is_left_out() -> None:
    huge = {(f"topic-{i:04d}", 0): 10**12 for i in range(400)}
    assert len(orjson.dumps({"v": 1, "scan": {t: {"0": o} for (t, _), o in huge.items()}})) > MAX_METADATA_BYTES
    assert encode_checkpoint(huge) == ""
    assert decode_checkpoint("") == {}


def test_watermarks_start_at_the_topics_end_and_only_rise() -> None:
    marks = Watermarks()
    marks.seed({RESPONSES: 10, LETTERS: 0})
    assert marks.scan_from() == {RESPONSES: 10, LETTERS: 0}
    marks.acknowledged(*RESPONSES, 14)
    marks.acknowledged(*RESPONSES, 12)  # acknowledgements come out of order: the highest counts
    marks.acknowledged("new", 1, 0)
    assert marks.scan_from() == {RESPONSES: 15, LETTERS: 0, ("new", 1): 1}
    marks.seed({RESPONSES: 3})  # a later seed never moves a watermark back
    assert marks.scan_from()[RESPONSES] == 15


def test_a_commit_carries_the_marks_of_the_chunk_its_position_is_in() -> None:
    marks = ConsumptionMarks()
    marks.chunk(SOURCE, 0, {RESPONSES: 100})
    marks.chunk(SOURCE, 50, {RESPONSES: 140})
    marks.chunk(SOURCE, 80, {RESPONSES: 170})
    current = {RESPONSES: 200}
    assert decode_checkpoint(marks.checkpoint(SOURCE, 10, current)) == {RESPONSES: 100}
    assert decode_checkpoint(marks.checkpoint(SOURCE, 60, current)) == {RESPONSES: 140}
    assert decode_checkpoint(marks.checkpoint(SOURCE, 60, current)) == {RESPONSES: 140}  # positions only rise
    assert decode_checkpoint(marks.checkpoint(SOURCE, 85, current)) == {RESPONSES: 170}
    assert consumed_upto(marks.checkpoint(SOURCE, 90, current, upto=120)) == 120
    other = TopicPartitionKey("src", 1)
    assert decode_checkpoint(marks.checkpoint(other, 5, current)) == current  # no chunk: what is acked now


def test_an_inherited_scan_is_kept_until_the_position_passes_what_the_dead_owner_recorded() -> None:
    marks = ConsumptionMarks()
    marks.inherit(SOURCE, 30, {RESPONSES: 40, LETTERS: 7})
    current = {RESPONSES: 90}
    # the lower of both scan starts per partition, and the dead owner's partitions too
    assert decode_checkpoint(marks.checkpoint(SOURCE, 20, current)) == {RESPONSES: 40, LETTERS: 7}
    assert decode_checkpoint(marks.checkpoint(SOURCE, 30, current)) == {RESPONSES: 40, LETTERS: 7}
    assert decode_checkpoint(marks.checkpoint(SOURCE, 31, current)) == current
    assert decode_checkpoint(marks.checkpoint(SOURCE, 20, current)) == current  # forgotten for good


def test_forgetting_a_revoked_partition_drops_its_marks() -> None:
    marks = ConsumptionMarks()
    marks.chunk(SOURCE, 0, {RESPONSES: 1})
    marks.inherit(SOURCE, 10, {LETTERS: 2})
    marks.forget(SOURCE)
    assert decode_checkpoint(marks.checkpoint(SOURCE, 0, {RESPONSES: 9})) == {RESPONSES: 9}
