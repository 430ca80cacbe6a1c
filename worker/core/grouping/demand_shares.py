"""Replicas on one Gorgias account divide its budget by what each has waiting: the share arithmetic.

Every replica publishes, per account, its *demand* — the calls it has due and not on the wire plus those
it started in the last :data:`RECENT_S` seconds (:class:`DemandMeter`), capped at what the account's budget
serves in one bucket (:func:`capped_demand`: a backlog of 10,000 calls asks no more than one of 40) and
rounded down to a power of two (:func:`demand_level`) — about once a second, and hears everyone's
(:mod:`worker.kafka.demand` carries them on the deployment's compacted ``demand`` topic). Its share of the
account's budget is then (:func:`demand_share`)::

    share = floor + (1 - n * floor) * own / total        (n live replicas, total = their demands added)

so the shares of replicas that hear the same demands add up to exactly one: a replica with nothing waiting
keeps the ``floor`` (enough to start a call, then its demand is heard), the rest follows the records, and
when nobody has anything waiting the budget is split evenly.

Views differ for a moment (a demand is heard ~1 s after it changed), so the sum could pass one while they
do. Three rules keep it at or under one (no 429s, the headroom left free):

- A replica's *own* demand counts at its lowest of the last :data:`RAISE_AFTER_S` (:class:`DemandRamp`):
  a demand that grows raises its share only once every other replica has heard it and given its part
  up. A demand that falls lowers its share at once, and the others raise theirs as soon as they hear it
  (it was given up before it was published): a share moves as fast as the demand behind it is heard.
- A replica that has not heard its own demand back within :data:`EXPIRE_S` does not know what the others
  hear: it keeps the floor until it hears itself again (:meth:`DemandBoard.share`). A new replica starts
  so.
- Another replica not heard from for :data:`GONE_AFTER_S` (SIGKILLed, cut off) is gone: its part returns
  to the others then — later than it fell to the floor itself, if it is alive but cut off. One that stops
  cleanly withdraws its entries at once.

Pure logic: no I/O, and every time is passed in (``now``: a monotonic clock of this process).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["EXPIRE_S", "FLOOR", "FORGET_AFTER_S", "GONE_AFTER_S", "HEARTBEAT_S", "RAISE_AFTER_S", "RECENT_S",
           "DemandBoard", "DemandMeter", "DemandRamp", "capped_demand", "demand_level", "demand_share",
           "worth_setting"]

FLOOR = 1 / 64  # an idle replica's share: one call of the odd endpoint test, or the first of a new backlog
HEARTBEAT_S = 1.0  # each replica publishes its demand this often (changed or not: it is its heartbeat too)
EXPIRE_S = 5.0  # a replica that has not heard itself for this long keeps the floor (five heartbeats missed)
RAISE_AFTER_S = 2.5  # a replica's own higher demand waits this long: the others hear it meanwhile
GONE_AFTER_S = EXPIRE_S + RAISE_AFTER_S  # another replica not heard from for this long is gone
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
        return demand_level(capped_demand(due + started - self._samples[0][1], account_usable))


def demand_level(calls: int) -> int:
    """``calls`` rounded down to a power of two (0 stays 0): the demand a replica publishes.

    Replicas about equally busy (a uniform topic: 23, 19 and 17 calls waiting) then ask the same and keep
    steady, equal shares; a share moves only when a replica's demand halves or doubles. Without it every
    small change moved the shares; a share moves only after the others heard the change, so fewer moves
    leave less of the budget between two views."""
    return 0 if calls <= 0 else 1 << (calls.bit_length() - 1)


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

    def __init__(self, me: str, expire_s: float = EXPIRE_S, gone_after_s: float = GONE_AFTER_S) -> None:
        self.me = me
        self.expire_s = expire_s
        self.gone_after_s = gone_after_s
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
        """The demands of the other replicas on ``account`` heard from within :attr:`gone_after_s`."""
        return [h.calls for replica, h in self._heard.get(account, {}).items()
                if replica != self.me and now - h.at <= self.gone_after_s]

    def share(self, account: str, own: int, now: float, floor: float = FLOOR) -> float:
        """This replica's share of ``account`` given its demand ``own`` now (the floor while not fresh)."""
        if not self.fresh(now):
            return floor
        return demand_share(own, self.others(account, now), floor)

    def silent(self, now: float, after_s: float = FORGET_AFTER_S) -> list[tuple[str, str]]:
        """``(account, replica)`` of the other replicas' entries silent for ``after_s``: gone long ago."""
        return [(account, replica) for account, replicas in self._heard.items()
                for replica, h in replicas.items() if replica != self.me and now - h.at > after_s]


class DemandRamp:
    """This replica's own demand on one account as its share counts it: a lower demand at once, a higher one
    once it has held for ``raise_after_s`` (the others have heard it by then and given their parts up).

    The demand in force is the lowest of the last ``raise_after_s`` seconds, or the demand itself when the
    replica is alone on the account (nobody else has a part to give up). A replica that just began to
    use the account starts from ``start`` (nothing): the others have not heard it yet."""

    def __init__(self, raise_after_s: float = RAISE_AFTER_S, start: int | None = 0) -> None:
        self.raise_after_s = raise_after_s
        self._demands: deque[tuple[float, int]] = deque()  # (when, demand), oldest first, rising
        self._start = start

    def step(self, demand: int, now: float, alone: bool = False) -> int:
        """Take the demand measured now; returns the demand in force."""
        if self._start is not None:
            self._demands.append((now, min(self._start, demand)))
            self._start = None
        while self._demands and now - self._demands[0][0] > self.raise_after_s:
            self._demands.popleft()
        while self._demands and self._demands[-1][1] >= demand:
            self._demands.pop()  # a later, lower demand makes the higher earlier ones irrelevant to the min
        self._demands.append((now, demand))
        if alone:
            self._demands.clear()
            self._demands.append((now, demand))
            return demand
        return self._demands[0][1]
