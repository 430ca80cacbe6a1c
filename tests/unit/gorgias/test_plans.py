"""PlanRunner: each step is a full delivery call (token, retries), the call's outcome is the last step's,
every step is recorded, a failing step ends the call naming it, known names skip their step."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

import orjson
from pydantic import SecretStr

from tests.support.gorgias_fakes import (
    SECRET,
    CountingTokens,
    FakeClock,
    ScriptedSender,
    credential,
    request,
    result,
    settings,
)
from worker.core.outcomes.call_outcome import retry_causes
from worker.core.requests.request import Plan, PlanError, RenderedRequest, Step, StepResult
from worker.gorgias.client import ClientRegistry, HttpResult
from worker.gorgias.delivery import DeliveryService


@dataclass(frozen=True)
class TwoTags(Plan):
    """Creates tags a and b (known_as tag:a / tag:b, 400 accepted), then the write."""

    write: RenderedRequest

    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        if done and done[-1].step.final:
            return None
        if len(done) < 2:
            name = "ab"[len(done)]
            create = request("https://acme.gorgias.com/api/tags", body=orjson.dumps({"name": name}))
            return Step(create, f"make sure tag {name} exists", accept=frozenset({400}), known_as=f"tag:{name}")
        return Step(self.write, "write", final=True)

    def describe(self) -> list[str]:
        return []


@dataclass(frozen=True)
class Unreadable(Plan):
    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        if not done:
            return Step(request(method="GET", body=None), "read")
        raise PlanError("unexpected list answer: 42")

    def describe(self) -> list[str]:
        return []


def service(*script: HttpResult) -> tuple[DeliveryService, ScriptedSender]:
    clock = FakeClock(start=100.0)
    sender = ScriptedSender(list(script), clock=clock)
    svc = DeliveryService(
        clients=ClientRegistry(factory=lambda c, s, d: sender, secret_resolver=lambda c: SecretStr(SECRET)),
        clock=clock, wall_clock=lambda: 1_750_000_000.0 + clock.now, sleep=clock.sleep, rng=random.Random(1),
    )
    return svc, sender


def planned(plan_cls: type[Plan] = TwoTags) -> RenderedRequest:
    write = request("https://acme.gorgias.com/api/tickets/1/tags", body=b'{"names":["a","b"]}')
    plan = TwoTags(write) if plan_cls is TwoTags else plan_cls()
    return replace(write, plan=plan)


async def test_every_step_is_sent_and_recorded_and_the_last_answer_is_the_calls() -> None:
    svc, sender = service(result(201, {"id": 1}), result(400, {"error": {"msg": "exists"}}), result(200))
    outcome = await svc.call(planned(), credential(), settings())
    assert outcome.ok and outcome.status == 200
    assert [r.url for r in sender.sent] == ["https://acme.gorgias.com/api/tags"] * 2 + [
        "https://acme.gorgias.com/api/tickets/1/tags"]
    assert all(r.plan is None for r in sender.sent)
    assert [(s.purpose, s.status, s.skipped) for s in outcome.steps] == [
        ("make sure tag a exists", 201, False), ("make sure tag b exists", 400, False), ("write", 200, False)]
    assert outcome.attempts == 1 and len(outcome.attempt_log) == 3  # each request sent once: no retry
    assert [a.step for a in outcome.attempt_log] == [1, 2, 3]


async def test_known_names_are_not_created_again_on_the_same_account() -> None:
    svc, sender = service(result(201), result(201), result(200), result(200))
    await svc.call(planned(), credential(), settings())
    outcome = await svc.call(planned(), credential(), settings())
    assert len(sender.sent) == 4  # the second call sends only its write
    assert [s.skipped for s in outcome.steps] == [True, True, False]
    svc2, sender2 = service(result(201), result(201), result(200))
    await svc2.call(planned(), credential(), settings())
    await svc2.call(planned(), credential(domain="other"), settings())
    assert sender2.sent[3].url.endswith("/api/tags")  # another account: created there too


async def test_a_step_is_retried_like_any_request() -> None:
    svc, _ = service(result(503), result(201), result(201), result(200))
    outcome = await svc.call(planned(), credential(), settings())
    assert outcome.ok and outcome.steps[0].attempts == 2 and outcome.attempts == 1
    assert retry_causes(outcome.attempt_log) == ["503"]  # the first step once; later steps are no retries


async def test_a_failing_step_ends_the_call_naming_the_step() -> None:
    svc, sender = service(result(201), result(403, {"error": {"msg": "forbidden"}}))
    outcome = await svc.call(planned(), credential(), settings())
    assert not outcome.ok and outcome.status == 403
    assert outcome.final_reason is not None and outcome.final_reason.startswith("step 2 (make sure tag b exists)")
    assert len(sender.sent) == 2 and outcome.steps[-1].error is not None


async def test_an_answer_the_plan_cannot_use_fails_the_call_without_retrying() -> None:
    svc, sender = service(result(200, 42))
    outcome = await svc.call(planned(Unreadable), credential(), settings())
    assert not outcome.ok and not outcome.retryable
    assert outcome.final_reason == "unexpected list answer: 42"
    assert len(sender.sent) == 1


async def test_every_request_of_a_plan_takes_a_token_of_its_own() -> None:
    svc, _ = service(result(201), result(503), result(201), result(200))
    tokens = CountingTokens()
    outcome = await svc.call(planned(), credential(), settings(), tokens=tokens)
    assert outcome.ok
    # step 1 uses the call's first token; step 2 (retried once) and step 3 each ask like a started call
    assert tokens.asked == [1, 2, 3, 2]
