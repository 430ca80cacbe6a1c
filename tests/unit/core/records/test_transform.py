"""Record transform: dotted paths, exclusions, and that exclusion copies only what it changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.records.transform import MissingAttribute, Transform, exclude, get_path, split_path

RECORD: dict[str, Any] = {
    "id": 7,
    "subject": "late order",
    "customer": {"email": "a@acme.com", "name": "Ann", "meta": {"trace_id": "t-1", "source": "shop"}},
    "messages": [
        {"body": "first", "via": "api", "attachments": [{"url": "u1"}, {"url": "u2"}]},
        {"body": "second", "via": "email"},
    ],
    "tags": ["a", "b", "c", "d"],
    "empty": None,
    "by_digit": {"0": "zero"},
}


# --------------------------------------------------------------------------------------------------
# get_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("id", 7),
        ("customer.email", "a@acme.com"),
        ("customer.meta.trace_id", "t-1"),
        ("messages.0.body", "first"),
        ("messages.1.via", "email"),
        ("messages.0.attachments.1.url", "u2"),
        ("tags.3", "d"),
        ("by_digit.0", "zero"),  # a mapping key made of digits is a key
        ("empty", None),  # present but null: returned, not missing
        ("customer.meta", {"trace_id": "t-1", "source": "shop"}),
    ],
)
def test_get_path_reads_dotted_paths_and_list_indexes(path: str, expected: Any) -> None:
    assert get_path(RECORD, path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "nope",
        "customer.phone",  # absent key one level down
        "customer.email.domain",  # a string is not a container
        "id.x",  # nor is a number
        "empty.x",  # nor is null
        "messages.2.body",  # index out of range
        "messages.-1.body",  # negative indexes are not supported
        "messages.first",  # a list needs a digit index
        "tags.1.x",
        "customer..email",  # an empty step
        "",
    ],
)
def test_get_path_raises_missing_attribute_with_the_path(path: str) -> None:
    with pytest.raises(MissingAttribute) as info:
        get_path(RECORD, path)
    assert info.value.path == path
    assert isinstance(info.value, KeyError)
    assert str(info.value) == f"no attribute {path}"


def test_get_path_works_on_any_mapping_and_tuples() -> None:
    from types import MappingProxyType

    data = MappingProxyType({"a": MappingProxyType({"b": (10, 20)})})
    assert get_path(data, "a.b.1") == 20
    with pytest.raises(MissingAttribute):
        get_path(data, "a.c")


def test_split_path_rejects_empty_steps() -> None:
    assert split_path("a.b.0") == ("a", "b", "0")
    for bad in ("", ".", "a.", ".a", "a..b"):
        with pytest.raises(ValueError, match="not a dotted attribute path"):
            split_path(bad)


# --------------------------------------------------------------------------------------------------
# exclude


def test_exclude_removes_top_level_and_nested_attributes() -> None:
    out = exclude(RECORD, ["id", "customer.meta.trace_id"])
    assert "id" not in out
    assert out["customer"]["meta"] == {"source": "shop"}
    assert out["subject"] == "late order"


def test_exclude_ignores_missing_paths() -> None:
    out = exclude(
        RECORD, ["nope", "customer.phone", "customer.email.x", "messages.9.body", "tags.x", "empty.x"]
    )
    assert out == RECORD
    assert out is not RECORD  # always a new top-level dict


def test_exclude_list_index_inside_an_item() -> None:
    out = exclude(RECORD, ["messages.0.via", "messages.0.attachments.0.url"])
    assert out["messages"][0] == {"body": "first", "attachments": [{}, {"url": "u2"}]}
    assert out["messages"][1] is RECORD["messages"][1]


def test_exclude_list_items_by_index_uses_original_indexes() -> None:
    out = exclude(RECORD, ["tags.1", "tags.3", "tags.9"])
    assert out["tags"] == ["a", "c"]
    out = exclude(RECORD, ["tags.3", "tags.0"])  # order of the paths does not matter
    assert out["tags"] == ["b", "c"]


def test_exclude_ancestor_wins_over_descendant() -> None:
    assert "customer" not in exclude(RECORD, ["customer.meta.trace_id", "customer"])
    assert "customer" not in exclude(RECORD, ["customer", "customer.meta.trace_id"])


def test_exclude_does_not_mutate_and_copies_only_touched_paths() -> None:
    snapshot = copy.deepcopy(RECORD)
    out = exclude(RECORD, ["customer.meta.trace_id", "messages.1.via"])
    assert snapshot == RECORD
    # copied along the paths
    assert out["customer"] is not RECORD["customer"]
    assert out["customer"]["meta"] is not RECORD["customer"]["meta"]
    assert out["messages"] is not RECORD["messages"]
    assert out["messages"][1] is not RECORD["messages"][1]
    # shared elsewhere
    assert out["messages"][0] is RECORD["messages"][0]
    assert out["tags"] is RECORD["tags"]
    assert out["by_digit"] is RECORD["by_digit"]


def test_exclude_digit_keys_of_a_mapping() -> None:
    assert exclude(RECORD, ["by_digit.0"])["by_digit"] == {}


# --------------------------------------------------------------------------------------------------
# Transform


def test_transform_without_exclusions_is_the_identity() -> None:
    t = Transform([])
    assert t(RECORD) is RECORD


def test_transform_that_removes_nothing_returns_the_input() -> None:
    t = Transform(["nope.x"])
    assert t(RECORD) is RECORD


def test_transform_is_reusable_and_matches_exclude() -> None:
    paths = ["id", "customer.meta", "messages.0.attachments", "tags.0"]
    t = Transform(paths)
    for _ in range(2):
        assert t(RECORD) == exclude(RECORD, paths)
    assert "customer.meta" in repr(t)


def test_transform_rejects_malformed_paths() -> None:
    with pytest.raises(ValueError, match="not a dotted attribute path"):
        Transform(["a..b"])


# --------------------------------------------------------------------------------------------------
# Properties: exclusion agrees with a naive deep-copying implementation and never mutates its input

KEYS = st.sampled_from(["a", "b", "c", "0", "1"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
PATHS = st.lists(st.lists(KEYS, min_size=1, max_size=3).map(".".join), max_size=5)


# complexity: a reference implementation, written plainly to differ from the real one
def reference_exclude(data: Any, paths: list[str]) -> Any:  # noqa: C901
    """Obvious reference: mark deletions on a deep copy, then apply them (list items highest index first)."""
    out = copy.deepcopy(data)
    dict_keys: dict[int, tuple[dict[str, Any], set[str]]] = {}
    list_items: dict[int, tuple[list[Any], set[int]]] = {}

    def walk(node: Any, steps: list[str]) -> None:
        head, rest = steps[0], steps[1:]
        if isinstance(node, dict) and head in node:
            if rest:
                walk(node[head], rest)
            else:
                dict_keys.setdefault(id(node), (node, set()))[1].add(head)
        elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
            if rest:
                walk(node[int(head)], rest)
            else:
                list_items.setdefault(id(node), (node, set()))[1].add(int(head))

    for path in paths:
        walk(out, path.split("."))
    for mapping, keys in dict_keys.values():
        for key in keys:
            del mapping[key]
    for items, indexes in list_items.values():
        for index in sorted(indexes, reverse=True):
            del items[index]
    return out


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(KEYS, JSON, max_size=5), paths=PATHS)
def test_exclude_matches_reference_and_never_mutates(data: dict[str, Any], paths: list[str]) -> None:
    snapshot = copy.deepcopy(data)
    out = exclude(data, paths)
    assert data == snapshot
    assert out == reference_exclude(data, paths)
