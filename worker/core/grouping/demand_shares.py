"""Replicas on one Gorgias account divide its budget by what each has waiting: the share arithmetic.

Every replica publishes, per account, its *demand* — the calls it has due and not on the wire plus those
it started in the last :data:`RECENT_S` seconds (:class:`DemandMeter`), capped at what the account's budget
serves in one bucket (:func:`capped_demand`: a backlog of 10,000 calls asks no more than one of 40) — about
once a second, and hears everyone's (:mod:`worker.kafka.demand` carries them
on the deployment's compacted ``demand`` topic). Its share of the account's budget is then
(:func:`demand_share`)::

    share = floor + (1 - n * floor) * own / total        (n live replicas, total = their demands added)

so the shares of replicas that hear the same demands add up to exactly one: a replica with nothing waiting
keeps the ``floor`` (enough to start a call, then its demand is heard), the rest follows the records, and
when nobody has anything waiting the budget is split evenly.

Views differ for a moment (a demand is heard ~1 s after it changed), so the sum could pass one while they
do. Two rules keep it at or under one (no 429s, the headroom left free):

- A share *falls* at once, and *rises* only once the higher figure has held for :data:`RAISE_AFTER_S`
  (:class:`ShareRamp`): by then every other replica has heard the demand behind it and given its part up.
  A replica alone on the account takes what it is given at once.
- A replica that has not heard its own demand back within :data:`EXPIRE_S` does not know what the others
  hear (they may count it gone and have taken its part): it keeps the floor until it hears itself again
  (:meth:`DemandBoard.share`). A new replica starts so.

A replica not heard from for :data:`EXPIRE_S` (SIGKILLed, cut off) is gone: its part returns to the others
within ``EXPIRE_S + RAISE_AFTER_S``. One that stops cleanly withdraws its entries at once.

Pure logic: no I/O, and every time is passed in (``now``: a monotonic clock of this process).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["EXPIRE_S", "FLOOR", "FORGET_AFTER_S", "HEARTBEAT_S", "RAISE_AFTER_S", "RECENT_S", "DemandBoard",
           "DemandMeter", "ShareRamp",
           "capped_demand", "demand_share", "worth_setting"]

FLOOR = 1 / 64  # an idle replica's share: one call of the odd endpoint test, or the first of a new backlog
HEARTBEAT_S = 1.0  # each replica publishes its demand this often (changed or not: it is its heartbeat too)
EXPIRE_S = 5.0  # a replica not heard from for this long is gone (five heartbeats missed)
RAISE_AFTER_S = 2.5  # a higher share waits this long: the others hear the demand behind it meanwhile
FORGET_AFTER_S = 60.0  # an entry silent this long is withdrawn from the topic by whoever notices
RECENT_S = 5.0  # calls started within this long count as demand too: a steady trickle keeps its share
RAISE_TOLERANCE = 0.01  # a rise of less than this (relative) is not worth putting in force


def capped_demand(calls_due: int, account_usable: int) -> int:
    """The demand a replica publishes: its calls due, at most what the account serves in one bucket.

    Replicas that each have more waiting than the account can serve in one bucket are equally busy: they
    split the budget evenly (as partition shares did) instead of by the size of their backlogs, which
    would move shares for no gain every time one backlog grows faster than another."""
    return max(0, min(calls_due, max(1, account_usable)))


class DemandMeter:
    """A replica's demand on one account: its calls due now plus the calls it started in the last
    :data:`RECENT_S` seconds, capped (:func:`capped_demand`).

    Calls due alone would read 0 most of the time for a stream the budget keeps up with (its calls go as
    they come), leaving that replica the floor and its next call waiting for a share; the calls it started
    lately say what it uses. When the budget is the bottleneck the calls due dominate."""

    def __init__(self, window_s: float = RECENT_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()  # (when, calls started so far), oldest first

    def demand(self, due: int, started: int, now: float, account_usable: int) -> int:
        """``due``: calls due now; ``started``: calls started on the account so far (a running count)."""
        self._samples.append((now, started))
        while len(self._samples) > 1 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        return capped_demand(due + started - self._samples[0][1], account_usable)


def demand_share(own: int, others: list[int], floor: float = FLOOR) -> float:
    """This replica's share of an account's budget, from its demand and the other live replicas'."""
    n = 1 + len(others)
    if n == 1:
        return 1.0
    total = own + sum(others)
    if total <= 0:
        return 1.0 / n
    floor = min(floor, 1.0 / n)
    return floor + (1.0 - n * floor) * own / total


def worth_setting(current: float, share: float) -> bool:
    """Should ``share`` replace the share in force? Any fall (the sum must not pass one), a rise only when
    it counts: each rise starts its new part of the bucket full, so a jittering share would waste it."""
    return share < current or share > current * (1 + RAISE_TOLERANCE) or (share == 1.0 and current < 1.0)


@dataclass(slots=True)
class _Heard:
    calls: int
    at: float  # when this replica heard it (its own clock)


class DemandBoard:
    """Every replica's latest demand per account as this replica (``me``) heard it, and when."""

    def __init__(self, me: str, expire_s: float = EXPIRE_S) -> None:
        self.me = me
        self.expire_s = expire_s
        self._heard: dict[str, dict[str, _Heard]] = {}  # account -> replica -> its latest demand
        self._own_echo = float("-inf")  # when this replica last heard one of its own entries

    def heard(self, account: str, replica: str, calls: int, now: float) -> None:
        """A replica's demand on ``account`` was read (this replica's own included: its echo)."""
        self._heard.setdefault(account, {})[replica] = _Heard(max(0, calls), now)
        if replica == self.me:
            self._own_echo = max(self._own_echo, now)

    def withdrawn(self, account: str, replica: str) -> None:
        """A replica withdrew its entry (stopped cleanly, or its entry was forgotten)."""
        replicas = self._heard.get(account)
        if replicas is not None:
            replicas.pop(replica, None)
            if not replicas:
                del self._heard[account]

    def fresh(self, now: float) -> bool:
        """Has this replica heard itself lately? Only then does it know what the others hear."""
        return now - self._own_echo <= self.expire_s

    def others(self, account: str, now: float) -> list[int]:
        """The demands of the other replicas on ``account`` heard from within :attr:`expire_s`."""
        return [h.calls for replica, h in self._heard.get(account, {}).items()
                if replica != self.me and now - h.at <= self.expire_s]

    def share(self, account: str, own: int, now: float, floor: float = FLOOR) -> float:
        """This replica's share of ``account`` given its demand ``own`` now (the floor while not fresh)."""
        if not self.fresh(now):
            return floor
        return demand_share(own, self.others(account, now), floor)

    def silent(self, now: float, after_s: float = FORGET_AFTER_S) -> list[tuple[str, str]]:
        """``(account, replica)`` of the other replicas' entries silent for ``after_s``: gone long ago."""
        return [(account, replica) for account, replicas in self._heard.items()
                for replica, h in replicas.items() if replica != self.me and now - h.at > after_s]


class ShareRamp:
    """The share in force for one account: a lower target at once, a higher one once it has held.

    The share in force is the lowest target of the last ``raise_after_s`` seconds, or the target itself
    when the replica is alone on the account (nobody else has a part to give up). A replica that just
    began to use the account starts from ``start`` (the floor): the others have not heard it yet."""

    def __init__(self, raise_after_s: float = RAISE_AFTER_S, start: float | None = FLOOR) -> None:
        self.raise_after_s = raise_after_s
        self._targets: deque[tuple[float, float]] = deque()  # (when, target), oldest first
        self._start = start

    def step(self, target: float, now: float, alone: bool = False) -> float:
        """Take ``target`` (computed now); returns the share in force."""
        if self._start is not None:
            self._targets.append((now, min(self._start, target)))
            self._start = None
        while self._targets and now - self._targets[0][0] > self.raise_after_s:
            self._targets.popleft()
        while self._targets and self._targets[-1][1] >= target:
            self._targets.pop()  # a later, lower target makes the higher earlier ones irrelevant to the min
        self._targets.append((now, target))
        if alone:
            self._targets.clear()
            self._targets.append((now, target))
            return target
        return self._targets[0][1]
