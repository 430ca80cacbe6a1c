"""Issue 19 item 3: a credential Gorgias refuses (401) holds its calls until it works again; a refused
route (403) holds the call and tries it again; neither is an attempt, neither fails the call."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from tests.support.gorgias_fakes import FakeClock, credential, request, result, settings
from worker.core.config.account import Credential
from worker.core.config.delivery import DeliverySettings
from worker.core.outcomes.call_outcome import CallOutcome
from worker.core.requests.request import RenderedRequest
from worker.gorgias.client import ClientRegistry, HttpResult
from worker.gorgias.delivery import DeliveryService
from worker.gorgias.holds import PROBE_FIRST_S, PROBE_MAX_S, CredentialGate
from worker.host import metrics


@dataclass
class KeyedSender:
    """Gorgias as one secret sees it: 401 unless the secret is valid now; the account answers 200."""

    secret: str
    valid: set[str]
    sent: list[tuple[str, str]]
    forbidden: list[str] = field(default_factory=list)  # paths answering 403
    missing_scope: list[str] = field(default_factory=list)  # the scope a 403 says is missing (RFC 6750), if any

    async def send(self, req: RenderedRequest) -> HttpResult:
        path = req.url.split(".com", 1)[1]
        self.sent.append((self.secret, f"{req.method} {path}"))
        if self.secret not in self.valid:
            return result(401, {"error": {"msg": "Unauthorized."}},
                          headers={"X-Gorgias-Account-Api-Call-Limit": "3/40"})
        if path in self.forbidden and self.missing_scope:
            challenge = f'Bearer error="insufficient_scope", scope="{self.missing_scope[0]}"'
            return result(403, {"error": {"msg": "Forbidden."}}, headers={"WWW-Authenticate": challenge})
        if path in self.forbidden:
            return result(403, {"error": {"msg": "Forbidden."}})
        if path == "/api/account":
            return result(200, {"domain": "acme"}, headers={"X-Gorgias-Account-Api-Call-Limit": "4/40"})
        return result(201, {"id": 1})

    async def aclose(self) -> None:
        return None


class Account:
    """A delivery service whose secret (as a rotated Secret file would) and Gorgias' valid keys can change."""

    def __init__(self, secret: str = "old-key", valid: tuple[str, ...] = ("old-key",)) -> None:
        self.clock = FakeClock(start=100.0)
        self.secret = secret
        self.valid = set(valid)
        self.sent: list[tuple[str, str]] = []
        self.forbidden: list[str] = []
        self.missing_scope: list[str] = []
        self.service = DeliveryService(
            clients=ClientRegistry(factory=self._client, secret_resolver=lambda c: SecretStr(self.secret)),
            clock=self.clock, wall_clock=lambda: 1_750_000_000.0 + self.clock.now, sleep=self.clock.sleep,
            rng=random.Random(1),
        )

    def _client(self, cred: Credential, secret: SecretStr, config: DeliverySettings) -> KeyedSender:
        return KeyedSender(secret.get_secret_value(), self.valid, self.sent, self.forbidden, self.missing_scope)

    def gate(self, cred: Credential) -> CredentialGate:
        return self.service.gates.get(cred, settings())


@dataclass
class Holding:
    """A pipeline's holds as the delivery sees them, recording what happened."""

    give_up: Callable[[], str | None] = lambda: None
    credential_waits: int = 0
    routes: list[str] = field(default_factory=list)
    scopes: list[str | None] = field(default_factory=list)
    answered: int = 0

    async def credential_held(self, gate: CredentialGate) -> str | None:
        self.credential_waits += 1
        reason = self.give_up()
        if reason is None:
            await gate.wait_open()
        return reason

    async def route_refused(self, reason: str, *, scope: str | None = None) -> str | None:
        self.routes.append(reason)
        self.scopes.append(scope)
        await asyncio.sleep(0)
        return self.give_up()

    def route_answered(self) -> None:
        self.answered += 1


async def until(condition: Callable[[], bool], rounds: int = 10_000) -> None:
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def held_gauge(account: str = "acme/basic") -> float | None:
    return metrics.REGISTRY.get_sample_value("gorgias_worker_credential_held", {"account": account})


async def test_a_refused_key_holds_the_call_until_the_rotated_file_holds_a_valid_one() -> None:
    acct = Account()
    cred = credential()
    acct.valid.clear()  # the key was revoked in Gorgias
    holding = Holding()
    call = asyncio.ensure_future(acct.service.call(request(), cred, settings(), holds=holding))
    gate = acct.gate(cred)
    await until(lambda: gate.held and gate.probes >= 3)
    assert not call.done() and held_gauge() == 1
    assert gate.reason is not None and "HTTP 401" in gate.reason
    probes = [what for _, what in acct.sent[1:]]
    assert set(probes) == {"GET /api/account"}  # only probes while held: the call waits
    acct.secret = "new-key"  # the Secret file is rotated...
    acct.valid.add("new-key")  # ...to a key Gorgias takes
    outcome: CallOutcome = await asyncio.wait_for(call, 5)
    assert outcome.ok and outcome.status == 201
    assert outcome.attempts == 1  # the 401 was a hold, not an attempt
    assert [(a.status, a.held) for a in outcome.attempt_log] == [(401, True), (201, False)]
    assert acct.sent[-1] == ("new-key", "POST /api/tickets") and not gate.held and held_gauge() == 0
    assert holding.credential_waits == 1


async def test_a_call_sent_with_a_key_renewed_since_is_sent_again_at_once() -> None:
    acct = Account(secret="old-key", valid=("new-key",))
    cred = credential()
    acct.service.clients.get(cred, settings())  # the client carries the old key
    acct.secret = "new-key"  # rotated before the 401 came back: re-reading it is enough
    outcome = await acct.service.call(request(), cred, settings(), holds=Holding())
    assert outcome.ok and outcome.attempts == 1
    assert [s for s, _ in acct.sent] == ["old-key", "new-key"] and not acct.gate(cred).held


async def test_without_holds_a_401_fails_the_call_as_before() -> None:
    acct = Account(valid=())
    outcome = await acct.service.call(request(), credential(), settings())
    assert not outcome.ok and outcome.status == 401 and outcome.attempts == 1
    assert not acct.gate(credential()).held


async def test_holds_giving_up_fail_the_call_with_their_reason() -> None:
    acct = Account(valid=())
    holding = Holding(give_up=lambda: "held too long")
    outcome = await acct.service.call(request(), credential(), settings(), holds=holding)
    assert not outcome.ok and outcome.final_reason == "held too long" and outcome.retryable
    assert outcome.attempts == 0 and [a.held for a in outcome.attempt_log] == [True]


async def test_a_refused_route_is_tried_again_and_its_answer_ends_the_hold() -> None:
    acct = Account()
    acct.forbidden.append("/api/tickets")
    holding = Holding()
    call = asyncio.ensure_future(acct.service.call(request(), credential(), settings(), holds=holding))
    await until(lambda: len(holding.routes) >= 3)
    acct.forbidden.clear()  # the user was given a role that may create tickets
    outcome = await asyncio.wait_for(call, 5)
    assert outcome.ok and outcome.attempts == 1 and holding.answered == 1
    assert holding.routes[0] == "POST /api/tickets: HTTP 403 from Gorgias: Forbidden."
    assert not acct.gate(credential()).held  # a 403 is about the route, not the credential
    assert holding.scopes[0] is None


async def test_a_403_naming_insufficient_scope_says_which_scope_and_how_to_grant_it() -> None:
    acct = Account()
    acct.forbidden.append("/api/tickets")
    acct.missing_scope.append("tickets:write")
    holding = Holding()
    call = asyncio.ensure_future(acct.service.call(request(), credential(), settings(), holds=holding))
    await until(lambda: len(holding.routes) >= 2)
    acct.forbidden.clear()  # the app was authorized again with the scope
    outcome = await asyncio.wait_for(call, 5)
    assert outcome.ok and outcome.attempts == 1
    assert holding.routes[0] == ("Gorgias refuses POST /api/tickets: the OAuth app was not granted scope tickets:write "
                                 "— authorize it again with that scope (README, OAuth apps, step 3)")
    assert holding.scopes[0] == "tickets:write"


async def test_time_held_is_not_spent_from_the_retry_budget() -> None:
    acct = Account(valid=())
    cred = credential()
    call = asyncio.ensure_future(acct.service.call(request(), cred, settings(max_retry_time_s=10), holds=Holding()))
    gate = acct.gate(cred)
    await until(lambda: gate.probes >= 6)
    assert gate.held_for() > 10  # held longer than the call's whole retry budget
    acct.valid.add("old-key")
    outcome = await asyncio.wait_for(call, 5)
    assert outcome.ok


async def test_the_start_check_reports_the_account_and_a_refusal_closes_the_gate() -> None:
    acct = Account()
    ok = await acct.gate(credential()).check_at_start()
    assert ok.ok and ok.account == {"domain": "acme"} and ok.call_limit == "4/40"
    other = Account(valid=())
    cred = credential(domain="globex")
    refused = await other.gate(cred).check_at_start()
    assert refused.refused and other.gate(cred).held and held_gauge("globex/basic") == 1
    await other.service.aclose()  # stops the probes
    assert held_gauge("globex/basic") == 1  # still held: nothing said it works


def test_nothing_here_holds_a_secret() -> None:
    acct = Account(secret="s3cr3t-value")
    gate = acct.gate(credential())
    text: Any = (gate.describe(), repr(gate.credential))
    assert "s3cr3t" not in str(text) and "GORGIAS_TEST_KEY" in gate.describe()


async def test_probes_of_a_refused_key_back_off_to_at_most_30_s() -> None:
    acct = Account(valid=())
    cred = credential()
    call = asyncio.ensure_future(acct.service.call(request(), cred, settings(), holds=Holding()))
    gate = acct.gate(cred)
    await until(lambda: gate.probes >= 9)
    pauses = acct.clock.sleeps[:9]  # before each probe (the held call itself waits without sleeping)
    ceilings = [min(PROBE_MAX_S, PROBE_FIRST_S * 2**n) for n in range(9)]  # 1, 2, 4 ... 30, 30
    assert all(ceiling / 2 <= pause <= ceiling for pause, ceiling in zip(pauses, ceilings, strict=True)), pauses
    assert [what for _, what in acct.sent[1:10]] == ["GET /api/account"] * 9  # one probe per pause, nothing else
    call.cancel()
    await asyncio.gather(call, return_exceptions=True)
    await acct.service.aclose()
