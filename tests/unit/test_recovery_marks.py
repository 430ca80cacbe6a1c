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
