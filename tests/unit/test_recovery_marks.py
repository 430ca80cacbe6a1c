"""Intent marks and outcome documents as the crash recovery reads them (pure parts)."""

from __future__ import annotations

import orjson

from worker.core.progress.recovery_marks import intent_document, intents_topic, outcome_sources


def test_an_intent_mark_names_only_its_destination_and_source_offsets() -> None:
    doc = intent_document("tickets", [("src", 0, 7), ("src", 1, 9)])
    assert doc == {"kind": "intent", "destination": "tickets",
                   "records": [{"topic": "src", "partition": 0, "offset": 7},
                               {"topic": "src", "partition": 1, "offset": 9}]}
    assert len(orjson.dumps(doc)) < 200  # a few dozen bytes per call, no body


def test_intents_and_outcomes_are_told_apart() -> None:
    intent = orjson.dumps(intent_document("tickets", [("src", 0, 7)]))
    event = orjson.dumps({"destination": "tickets", "outcome": "delivered",
                          "records": [{"topic": "src", "partition": 0, "offset": 7}]})
    letter = orjson.dumps({"destination": "tickets", "records": [{"source": {"topic": "src", "partition": 0,
                                                                            "offset": 8}}]})
    assert outcome_sources(intent, "tickets") == (True, [("src", 0, 7)])
    assert outcome_sources(event, "tickets") == (False, [("src", 0, 7)])
    assert outcome_sources(letter, "tickets") == (False, [("src", 0, 8)])


def test_other_destinations_and_junk_are_ignored() -> None:
    assert outcome_sources(orjson.dumps(intent_document("other", [("src", 0, 1)])), "tickets") == (False, ())
    assert outcome_sources(b"{broken", "tickets") == (False, ())
    assert outcome_sources(None, "tickets") == (False, ())


def test_the_intent_topic_belongs_to_the_deployment() -> None:
    assert intents_topic("gorgias-worker") == "gorgias-worker.intents"


def test_a_job_mark_names_the_job_and_the_scan_keeps_it_for_records_past_the_position() -> None:
    from worker.core.progress.offsets import TopicPartitionKey
    from worker.core.progress.recovery_marks import RecoveryScan

    scan = RecoveryScan(set(), set(), {})
    positions = {TopicPartitionKey("src", 0): 5}
    scan.add(orjson.dumps(intent_document("jobs", [("src", 0, 4), ("src", 0, 6)])), "jobs", positions)
    scan.add(orjson.dumps(intent_document("jobs", [("src", 0, 4), ("src", 0, 6)], job_id=31)), "jobs", positions)
    scan.add(orjson.dumps({**intent_document("jobs", [("src", 0, 7)]), "job_id": "31"}), "jobs", positions)
    assert scan.intended == {("src", 0, 6), ("src", 0, 7)} and scan.jobs == {("src", 0, 6): 31}
    event = orjson.dumps({"destination": "jobs", "job_id": 5, "records": [{"topic": "src", "partition": 0,
                                                                          "offset": 8}]})
    scan.add(event, "jobs", positions)  # only intent marks name jobs to follow
    assert scan.recorded == {("src", 0, 8)} and ("src", 0, 8) not in scan.jobs


def test_a_call_follows_the_jobs_its_records_name_only_when_every_record_names_one() -> None:
    from worker.core.records.record import RESUME_JOB, Record, SourceRef
    from worker.core.requests.jobs import created_jobs

    def rec(offset: int, job: int | None) -> Record:
        r = Record(data={}, source=SourceRef("src", 0, offset, None, None))
        if job is not None:
            r.extra[RESUME_JOB] = job
        return r

    assert created_jobs([rec(1, 7), rec(2, 7), rec(3, 9)]) == (7, 9)
    assert created_jobs([rec(1, 7), rec(2, None)]) == ()
    assert created_jobs([]) == ()
