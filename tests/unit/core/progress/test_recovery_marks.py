"""Intent marks and outcome documents as the crash recovery reads them (pure parts)."""

from __future__ import annotations

import orjson

from worker.core.config.deployment import Deployment
from worker.core.progress.recovery_marks import intent_document, outcome_marks

HERE = Deployment("prod")


def test_an_intent_mark_names_only_its_deployment_destination_and_source_offsets() -> None:
    doc = intent_document("prod", "tickets", [("src", 0, 7), ("src", 1, 9)])
    assert doc == {"kind": "intent", "deployment": "prod", "destination": "tickets",
                   "records": [{"topic": "src", "partition": 0, "offset": 7},
                               {"topic": "src", "partition": 1, "offset": 9}]}
    assert len(orjson.dumps(doc)) < 200  # a few dozen bytes per call, no body


def test_intents_and_outcomes_are_told_apart() -> None:
    intent = orjson.dumps(intent_document("prod", "tickets", [("src", 0, 7)]))
    event = orjson.dumps({"destination": "tickets", "outcome": "delivered",
                          "records": [{"topic": "src", "partition": 0, "offset": 7}]})
    letter = orjson.dumps({"destination": "tickets", "records": [{"source": {"topic": "src", "partition": 0,
                                                                            "offset": 8}}]})
    assert outcome_marks(intent, HERE, "tickets")[:2] == (True, [("src", 0, 7)])
    assert outcome_marks(event, HERE, "tickets")[:2] == (False, [("src", 0, 7)])
    assert outcome_marks(letter, HERE, "tickets")[:2] == (False, [("src", 0, 8)])


def test_other_destinations_other_deployments_and_junk_are_ignored() -> None:
    other_destination = orjson.dumps(intent_document("prod", "other", [("src", 0, 1)]))
    other_deployment = orjson.dumps(intent_document("staging", "tickets", [("src", 0, 1)]))
    assert outcome_marks(other_destination, HERE, "tickets")[:2] == (False, ())
    assert outcome_marks(other_deployment, HERE, "tickets")[:2] == (False, ())
    assert outcome_marks(b"{broken", HERE, "tickets")[:2] == (False, ())
    assert outcome_marks(None, HERE, "tickets")[:2] == (False, ())


def test_marks_written_before_deployments_are_read_as_this_deployment_s() -> None:
    legacy = orjson.dumps({"kind": "intent", "destination": "tickets",
                           "records": [{"topic": "src", "partition": 0, "offset": 3}]})
    assert outcome_marks(legacy, HERE, "tickets")[:2] == (True, [("src", 0, 3)])


def test_a_job_mark_names_the_job_and_the_scan_keeps_it_for_records_past_the_position() -> None:
    from worker.core.progress.offsets import TopicPartitionKey
    from worker.core.progress.recovery_marks import RecoveryScan

    scan = RecoveryScan(set(), set(), {})
    positions = {TopicPartitionKey("src", 0): 5}
    sources = [("src", 0, 4), ("src", 0, 6)]
    scan.add(orjson.dumps(intent_document("prod", "jobs", sources)), HERE, "jobs", positions)
    scan.add(orjson.dumps(intent_document("prod", "jobs", sources, job_id=31)), HERE, "jobs", positions)
    unnamed = {**intent_document("prod", "jobs", [("src", 0, 7)]), "job_id": "31"}  # not an id
    scan.add(orjson.dumps(unnamed), HERE, "jobs", positions)
    assert scan.intended == {("src", 0, 6), ("src", 0, 7)} and scan.jobs == {("src", 0, 6): 31}
    event = orjson.dumps({"deployment": "prod", "destination": "jobs", "job_id": 5,
                          "records": [{"topic": "src", "partition": 0, "offset": 8}]})
    scan.add(event, HERE, "jobs", positions)  # only intent marks name jobs to follow
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
