"""The headers on the wire, written once for the client and for ``preview``."""

from __future__ import annotations

from worker.core.requests.request import RenderedRequest
from worker.core.requests.wire_headers import USER_AGENT, wire_headers


def request(headers: dict[str, str], content_type: str | None = "application/json") -> RenderedRequest:
    return RenderedRequest("POST", "https://acme.gorgias.com/api/tags", headers, b"{}", content_type)


def test_the_worker_sets_credentials_host_and_content_type_itself() -> None:
    sent = wire_headers(request({"Authorization": "x", "HOST": "evil", "Content-Type": "text/plain",
                                 "Content-Length": "9", "X-Team": "cx"}), "Basic abc", "acme.gorgias.com")
    assert sent == {"Host": "acme.gorgias.com", "Authorization": "Basic abc", "Content-Type": "application/json",
                    "X-Team": "cx", "Accept": "application/json", "User-Agent": USER_AGENT}


def test_given_accept_user_agent_and_content_type_without_a_body_type_are_kept() -> None:
    sent = wire_headers(request({"accept": "*/*", "user-agent": "me", "content-type": "text/csv"}, None), "Bearer t")
    assert sent == {"Authorization": "Bearer t", "content-type": "text/csv", "accept": "*/*", "user-agent": "me"}
