"""Where a call aimed at a merged object goes: the Location, with the sub-resource and query kept."""

from __future__ import annotations

import pytest

from worker.gorgias.merged import merged_target

BASE = "https://acme.gorgias.com"


@pytest.mark.parametrize(("url", "location", "expected", "ids"), [
    (f"{BASE}/api/customers/5", "/api/customers/9/", f"{BASE}/api/customers/9/", (5, 9)),
    (f"{BASE}/api/customers/5/data", "/api/customers/9/", f"{BASE}/api/customers/9/data", (5, 9)),
    (f"{BASE}/api/customers/5/custom-fields/3", f"{BASE}/api/customers/9",
     f"{BASE}/api/customers/9/custom-fields/3", (5, 9)),
    (f"{BASE}/api/tickets/5/tags?x=1", "/api/tickets/7/tags", f"{BASE}/api/tickets/7/tags?x=1", (5, 7)),
    (f"{BASE}/api/tickets/5", "../tickets/8", f"{BASE}/api/tickets/8", (5, 8)),
])
def test_the_target_keeps_what_was_asked_of_the_object(
    url: str, location: str, expected: str, ids: tuple[int, int]
) -> None:
    target = merged_target(url, location)
    assert target is not None and target.to_url == expected and target.from_url == url
    assert (target.original_id, target.merged_into_id) == ids
    assert target.as_event()["merged_into_id"] == ids[1]


@pytest.mark.parametrize("location", [None, "", "  ", "https://evil.example/api/customers/9",
                                      "http://acme.gorgias.com/api/customers/9", "/api/customers/5"])
def test_no_target_elsewhere_or_back_to_the_same_url(location: str | None) -> None:
    assert merged_target(f"{BASE}/api/customers/5", location) is None
