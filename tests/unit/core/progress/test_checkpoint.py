"""The crash-recovery checkpoint, broker-free: its codec in commit metadata, the outcome watermarks, and
which checkpoint a commit carries (the chunk's marks, a dead owner's inherited scan)."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from worker.core.config.deployment import Deployment
from worker.core.progress.offsets import TopicPartitionKey
from worker.core.progress.recovery_marks import (
    MAX_METADATA_BYTES,
    ConsumptionMarks,
    Inheritance,
    Inherited,
    LeftBehind,
    RecoveryScan,
    Watermarks,
    consumed_upto,
    decode_checkpoint,
    encode_checkpoint,
    intent_document,
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


INTENTS = ("workers.intents", 0)


def test_what_a_new_owner_inherits_from_the_committed_offsets() -> None:
    other = TopicPartitionKey("src", 1)
    fresh = TopicPartitionKey("src", 2)
    inherited = Inheritance.of({
        SOURCE: (10, encode_checkpoint({RESPONSES: 40, LETTERS: 9}, upto=25)),
        other: (5, encode_checkpoint({RESPONSES: 30})),  # no upto: an older worker
        fresh: (-1, None),  # never committed
    }, set())
    assert inherited.positions == {SOURCE: 10, other: 5}
    assert inherited.scan_from == {RESPONSES: 30, LETTERS: 9}  # the lowest start of every partition
    assert inherited.maybe_sent_below == {SOURCE: 25}  # consumed without an outcome: may have been sent
    assert Inheritance.of({fresh: (3, "foreign metadata")}, set()) == Inheritance()


def test_a_checkpoint_covering_the_intent_topic_narrows_what_may_have_been_sent() -> None:
    committed = {SOURCE: (10, encode_checkpoint({RESPONSES: 40, INTENTS: 3}, upto=25))}
    inherited = Inheritance.of(committed, {INTENTS})
    assert inherited.maybe_sent_below == {}  # the intent marks say exactly which records were on the wire
    assert inherited.covered({INTENTS}) == {SOURCE}
    older = Inheritance.of({SOURCE: (10, encode_checkpoint({RESPONSES: 40}, upto=25))}, {INTENTS})
    assert older.maybe_sent_below == {SOURCE: 25} and older.covered({INTENTS}) == set()



def test_what_was_left_behind_is_told_once_per_record() -> None:
    """Records already recorded are finished (None); marked ones may have reached Gorgias, those with a job follow
    it; past the dead owner's ``upto`` nothing is flagged any more. Each answer is given once."""
    committed = {SOURCE: (10, encode_checkpoint({RESPONSES: 40, INTENTS: 3}))}
    left = LeftBehind()
    assert left.take(SOURCE, 10) == Inherited()  # nothing learned yet
    recorded, intended = {("src", 0, 11)}, {("src", 0, 11), ("src", 0, 12), ("src", 0, 13)}
    left.learn(Inheritance.of(committed, {INTENTS}), {INTENTS}, recorded, intended, {("src", 0, 13): 77})
    assert left.take(SOURCE, 11) is None
    assert left.take(SOURCE, 12) == Inherited(possibly_delivered=True)
    assert left.take(SOURCE, 13) == Inherited(possibly_delivered=True, created_job=77)
    assert [left.take(SOURCE, o) for o in (11, 12, 13)] == [Inherited()] * 3  # told once
    older = LeftBehind()  # a checkpoint without the intent topic: everything below upto may have been sent
    older.learn(Inheritance.of({SOURCE: (10, encode_checkpoint({RESPONSES: 40}, upto=12))}, {INTENTS}), {INTENTS},
                set(), set(), {})
    assert [older.take(SOURCE, o).possibly_delivered for o in (10, 11, 12, 11)] == [True, True, False, False]


def test_the_scan_keeps_this_destination_s_records_at_or_past_the_committed_position() -> None:
    positions = {SOURCE: 10}
    scan = RecoveryScan(set(), set(), {})
    event = {"destination": "d", "records": [{"topic": "src", "partition": 0, "offset": o} for o in (9, 10, 12)]}
    letter = {"destination": "d", "records": [{"source": {"topic": "src", "partition": 0, "offset": 11}}]}
    here = Deployment("prod")
    for doc in (event, letter, {**event, "destination": "other"}, {**event, "deployment": "staging", "records": [
            {"topic": "src", "partition": 0, "offset": 14}]}, intent_document("prod", "d", [("src", 0, 13)])):
        scan.add(orjson.dumps(doc), here, "d", positions)
    scan.add(b"not json", here, "d", positions)
    scan.add(None, here, "d", positions)
    assert scan.recorded == {("src", 0, 10), ("src", 0, 11), ("src", 0, 12)}
    assert scan.intended == {("src", 0, 13)}
    inherited = Inheritance.of({SOURCE: (10, encode_checkpoint({RESPONSES: 0}))}, set())
    assert inherited.last_recorded(scan.recorded | {("src", 7, 99)}) == {SOURCE: 12}
