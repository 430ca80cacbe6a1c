"""`gorgias-worker status` (pure part): a running worker's view of a held destination and of the OAuth scopes
its app lacks reach the report, as lines and in the JSON."""

from __future__ import annotations

from typing import Any

from worker.tools.status_report import format_report, merge

KAFKA_VIEW: dict[str, dict[str, Any]] = {"dest": {
    "name": "dest", "source": "file", "state": "active", "state_from": "config", "group_id": "g",
    "start_from": "earliest", "partitions": [{"topic": "t", "partition": 0, "committed": 3, "end": 5, "lag": 2}],
    "missing_topics": [],
}}
REASON = ("Gorgias refuses POST /api/tickets: the OAuth app was not granted scope tickets:write — authorize it "
          "again with that scope (README, OAuth apps, step 3)")


def live(**status: Any) -> dict[str, Any]:
    return {"ready": True, "destinations": [{"name": "dest", "state": "active", "held_calls": 0, "reason": None,
                                             "scopes_missing": [], **status}]}


def test_a_held_destination_says_why_and_which_scopes_its_app_lacks() -> None:
    report = merge(KAFKA_VIEW, live(state="held", held_calls=2, reason=REASON, scopes_missing=["tickets:write"]))
    (dest,) = report["destinations"]
    assert dest["held_reason"] == REASON and dest["scopes_missing"] == ["tickets:write"]
    assert "reason" not in dest  # that key is a saved destination's failure (its block is one line)
    lines = format_report(report)
    assert "dest: active, 2 call(s) held (from config), group g, start_from earliest (a new group only)" in lines
    assert f"  held: {REASON}" in lines
    assert ("  scopes missing: tickets:write (its OAuth app was not granted them: authorize the app again with "
            "them, README, OAuth apps)") in lines


def test_nothing_held_and_nothing_missing_adds_no_line() -> None:
    lines = format_report(merge(KAFKA_VIEW, live()))
    assert not [line for line in lines if "held:" in line or "scopes missing" in line]


def test_a_paused_destination_lacking_scopes_says_so_without_a_hold() -> None:
    lines = format_report(merge(KAFKA_VIEW, live(state="paused", scopes_missing=["jobs:write", "jobs:read"])))
    assert [line for line in lines if "scopes missing: jobs:write jobs:read" in line]
    assert not [line for line in lines if "held:" in line]
