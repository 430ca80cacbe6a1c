"""Each replica's share of an account's budget: from what every replica has waiting, else from partitions.

Replicas of the worker split every destination's partitions through consumer groups, and each paces its
account's rate limiter at its *share* of the account's budget, so that together they never pass
``capacity - headroom`` (no 429s, the headroom stays free for other integrations).

**By demand** (the worker's way once its demand topic is read, :mod:`worker.kafka.demand`): every replica
publishes the calls it has waiting per account, and takes the part of the budget that its demand is of
everyone's (:mod:`worker.core.grouping.demand_shares`). A skewed topic — every record in one partition —
gets the whole budget on the replica that owns that partition, instead of the fraction of partitions it
owns.

**By partitions** (before the demand topic is read, and in tools that run one pipeline): a replica that
owns a fraction ``f`` of a destination's partitions carries about ``f`` of its records and paces at ``f``
of the budget. Several destinations on one account: the mean of their fractions (the same configuration
runs on every replica, so the means add up to one as well). A replica that owns no partition keeps
:data:`MIN_SHARE`, which is enough for the odd endpoint test.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from worker.core.config.account import Credential
from worker.gorgias.ratelimit import RateLimiterRegistry

MIN_SHARE = 1 / 64


def partition_share(owned: int, total: int) -> float:
    """The fraction of a destination's partitions owned here, floored at :data:`MIN_SHARE`."""
    if total <= 0:
        return 1.0
    return min(1.0, max(MIN_SHARE, owned / total))


class BudgetShares:
    """Sets each account's rate limiter to this replica's share: from every destination's assignment, until
    :meth:`follow_demand` hands the shares to the demand exchange."""

    def __init__(self, limiters: RateLimiterRegistry) -> None:
        self._limiters = limiters
        self._fractions: dict[str, tuple[str, float]] = {}  # destination -> (account, fraction)
        self._by_demand: Callable[[Credential], float] | None = None

    def follow_demand(self, settle: Callable[[Credential], float]) -> None:
        """From now on shares follow demand: ``settle(credential)`` puts its account's share in force now
        (and returns it); an assignment no longer sets the share."""
        self._by_demand = settle

    def assigned(self, destination: str, credential: Credential, owned: int, total: int) -> float:
        """Record ``destination``'s new assignment; returns its account's share, now in force."""
        account = credential.account_key
        self._fractions[destination] = (account, partition_share(owned, total))
        if self._by_demand is not None:
            return self._by_demand(credential)
        share = self.share_of(account)
        self._limiters.get(credential).set_share(share)
        return share

    def released(self, destination: str, credential: Credential) -> None:
        """``destination`` stopped here (removed or replaced): its account's share no longer counts it."""
        if self._fractions.pop(destination, None) is not None and self._by_demand is None:
            self._limiters.get(credential).set_share(self.share_of(credential.account_key))

    def share_of(self, account: str) -> float:
        fractions = [f for a, f in self._fractions.values() if a == account]
        return sum(fractions) / len(fractions) if fractions else 1.0


# Calls per second one replica sustains against Gorgias, measured (issue 26 item 5): one worker with the
# default delivery.max_in_flight (16), a bucket it cannot fill, every call answered in 300-600 ms as Gorgias
# does: 33.8 and 33.7 calls/s over 60 s (`bench/replicas_bench.py --part capacity`, docs/benchmarks.md §5,
# "Calls per second of one replica"). What bounds a replica is Gorgias' latency (16 / 0.45 s = 35.6 at
# most), not the worker (over 1,000 calls/s against an instant sandbox). The autoscaling caps
# (deploy/kubernetes, the Helm chart) divide the accounts' budgets by it.
REPLICA_CALLS_PER_S = 33.7


def account_budgets(credentials: list[Credential]) -> dict[str, float]:
    """Calls per second the worker may spend on each account: ``(requests - headroom) / per_seconds``."""
    budgets: dict[str, float] = {}
    for cred in credentials:
        if cred.account_key not in budgets and cred.rate_limit.enabled:
            usable = max(1, cred.bucket_size() - cred.rate_limit.headroom)
            budgets[cred.account_key] = usable / cred.rate_limit.per_seconds
    return budgets


def useful_replicas(credentials: list[Credential], per_replica_calls_s: float = REPLICA_CALLS_PER_S) -> int:
    """How many replicas the accounts' budgets can keep busy: more add no call per second to any account.

    Replicas pace at their share of each account, so extra replicas cause no 429s, but they only split
    the same budget further. Autoscalers should stop here (plus one spare for availability).
    """
    total = sum(account_budgets(credentials).values())
    return max(1, math.ceil(total / per_replica_calls_s))
