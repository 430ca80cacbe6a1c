"""Entries of the demand topic: ``<deployment>/<account>/<replica>`` keys, ``{"calls", "at"}`` values."""

from __future__ import annotations

import orjson

from worker.core.config.deployment import Deployment
from worker.kafka.demand import new_replica_id, parse_demand


def test_an_entry_names_its_account_and_replica() -> None:
    scope = Deployment("prod")
    name = scope.entry(scope.key("acme/basic/host-1a2b"))
    assert parse_demand(name, orjson.dumps({"calls": 7, "at": 1.0})) == ("acme/basic", "host-1a2b",
                                                                         {"calls": 7, "at": 1.0})


def test_a_tombstone_withdraws() -> None:
    assert parse_demand("acme/basic/r1", None) == ("acme/basic", "r1", None)


def test_junk_is_ignored() -> None:
    assert parse_demand(None, b"{}") is None
    assert parse_demand("no-separator", orjson.dumps({"calls": 1})) is None
    assert parse_demand("acme/basic/r1", b"not json") is None
    assert parse_demand("acme/basic/r1", orjson.dumps({"calls": "many"})) is None
    assert parse_demand("acme/basic/", orjson.dumps({"calls": 1})) is None


def test_replica_ids_differ_and_never_hold_the_separator() -> None:
    ids = {new_replica_id() for _ in range(5)}
    assert len(ids) == 5
    assert not any("/" in i for i in ids)
