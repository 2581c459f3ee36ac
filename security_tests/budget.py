"""An honest query budget: which key, source address and rate-limit window each black-box test spends.

A live target promises ``limit`` answers per window per key (and per client address). Tests that share
one key silently spend each other's budget, which is how a correct limit once read as "28 of 100
answered". The plan is made before any request is sent: every test gets slices (a key, a source
address, a number of queries, a window number). A test that must see a whole untouched window (the
rate-limit test, the extraction attacker) gets a key no one else uses in that window; when the keys
cannot cover a test, the plan says so and the test reports *not assessed (budget)*, never open or
fixed. The plan is a pure function of the collected tests and the options, so every xdist worker
computes the same one and no counter is shared.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

UNLIMITED = 10**9


@dataclass(frozen=True)
class Need:
    """What one test spends. ``fresh`` whole windows of a key nobody else touches (``fresh_queries`` sent
    on each, refusals included); then between ``shared_min`` and ``shared_want`` queries with a valid key
    from any window with room; ``keyless`` requests without a valid key (they spend an address budget)."""

    test: str = ""
    shared_min: int = 0
    shared_want: int = 0
    fresh: int = 0
    fresh_queries: int = 0
    keyless: int = 0
    why: str = ""
    optional: bool = False
    """A part the finding is assessed without (the OpenAPI fuzz): planned after every core need, so when the
    budget is short it is what is dropped."""


def spends(need: Callable) -> Callable:
    """Declare, next to an attack, what it sends against a live target: ``need(profile)`` is a ``Need``
    (queries with the key, without it, on an untouched window; ``test`` left empty). A test that runs the
    attack marks itself ``@runs(fn)`` (``security_tests/reach.py``); the query plan reads the need from there before the
    first request."""

    def mark(attack: Callable) -> Callable:
        attack.spends = need
        return attack

    return mark


@dataclass(frozen=True)
class Slice:
    key_index: int | None
    address: str | None
    queries: int
    window: int
    fresh: bool = False


@dataclass
class Allocation:
    test: str
    slices: list[Slice] = field(default_factory=list)
    keyless_addresses: list[str] = field(default_factory=list)
    """Loopback source addresses for the requests without a key, one per window's worth of them."""
    reason: str = ""

    @property
    def keyless_address(self) -> str | None:
        return self.keyless_addresses[0] if self.keyless_addresses else None

    @property
    def assessed(self) -> bool:
        return not self.reason

    @property
    def fresh(self) -> list[Slice]:
        return [s for s in self.slices if s.fresh]

    @property
    def shared(self) -> list[Slice]:
        return [s for s in self.slices if not s.fresh]

    def as_dict(self) -> dict:
        return {"test": self.test, "reason": self.reason, "keyless_addresses": self.keyless_addresses,
                "slices": [asdict(s) for s in self.slices]}


class _Ledger:
    """Room left per key and per address in each one's current window; windows only move forward."""

    def __init__(self, keys: int, limit: int | None, loopback: bool) -> None:
        self.limit = limit or UNLIMITED
        self.room = {("key", k): self.limit for k in range(keys)}
        self.window = {("key", k): 0 for k in range(keys)}
        self.loopback = loopback
        if not loopback:
            self.room[("address", "peer")] = self.limit
            self.window[("address", "peer")] = 0

    def resources(self, key: int) -> list[tuple]:
        return [("key", key)] + ([] if self.loopback else [("address", "peer")])

    def untouched(self, key: int) -> bool:
        return all(self.room[r] == self.limit for r in self.resources(key))

    def advance(self, key: int) -> int:
        """Move the key (and a shared address) to a new window; returns the window number."""
        window = max(self.window[r] for r in self.resources(key)) + 1
        for resource in self.resources(key):
            self.window[resource], self.room[resource] = window, self.limit
        return window

    def room_of(self, key: int) -> int:
        return min(self.room[r] for r in self.resources(key))

    def spend(self, key: int, queries: int) -> int:
        for resource in self.resources(key):
            self.room[resource] -= queries
        return self.window[("key", key)]


@dataclass
class BudgetPlan:
    limit: int | None
    window_seconds: int
    keys: int
    loopback: bool
    can_wait: bool
    max_wait: float
    allocations: dict[str, Allocation] = field(default_factory=dict)

    @property
    def windows_used(self) -> int:
        return max((s.window for a in self.allocations.values() for s in a.slices), default=0) + 1

    def as_dict(self) -> dict:
        return {"limit_per_window": self.limit, "window_seconds": self.window_seconds, "keys": self.keys,
                "per_address_budgets": "one loopback source address per slice" if self.loopback
                else "one address shared by every test", "waiting_allowed": self.can_wait,
                "max_wait_seconds": self.max_wait, "windows_used": self.windows_used,
                "rule": RULE, "tests": {name: a.as_dict() for name, a in self.allocations.items()}}


RULE = ("each test's queries are planned before the first request against the promised limit per key and per "
        "address; tests that share a key share one window only while their planned queries fit in it; a test "
        "that must see a whole window gets a key no other test uses in that window (or waits for the window to "
        "reset); a test the budget cannot cover is not assessed")


def source_addresses(network: str, count: int) -> list[str]:
    hosts = ipaddress.ip_network(network, strict=False).hosts()
    return [str(next(hosts)) for _ in range(count)]


def plan_order(need: Need) -> int:
    """Where a need is planned: fixed needs on shared windows, then whole untouched windows, then the searches
    that take what room is left, then the optional parts; collection order within each (a stable sort)."""
    return 3 if need.optional else 1 if need.fresh else 2 if need.shared_want > need.shared_min else 0


def make_plan(needs: list[Need], keys: int, limit: int | None, window_seconds: int, loopback: bool,
              can_wait: bool, max_wait: float, addresses: list[str] | None = None) -> BudgetPlan:
    """Allocate ``needs`` in order. ``addresses`` (loopback) hands one source address to each slice."""
    plan = BudgetPlan(limit, window_seconds, max(keys, 1), loopback, can_wait, max_wait)
    ledger = _Ledger(plan.keys, limit, loopback)
    pool = iter(addresses or [])
    max_window = int(max_wait // (window_seconds + 1)) if can_wait and limit else 0
    for need in needs:
        saved = copy.deepcopy(ledger)
        allocation = _allocate(need, ledger, max_window)
        if allocation.reason:
            ledger = saved
        else:
            allocation.slices = [Slice(s.key_index, next(pool, None) if loopback else None, s.queries, s.window,
                                       s.fresh) for s in allocation.slices]
            per_address = limit or UNLIMITED
            allocation.keyless_addresses = [address for _ in range(-(-need.keyless // per_address))
                                            if (address := next(pool, None))] if loopback else []
        plan.allocations[need.test] = allocation
    return plan


def _allocate(need: Need, ledger: _Ledger, max_window: int) -> Allocation:
    allocation = Allocation(need.test)
    for _ in range(need.fresh):
        key = next((k for k in range(_key_count(ledger)) if ledger.untouched(k)), None)
        if key is None:
            key = min(range(_key_count(ledger)), key=lambda k: ledger.window[("key", k)])
            if ledger.advance(key) > max_window:
                return _short(need, ledger, "a whole window of a key no other test uses")
        ledger.spend(key, ledger.limit)
        allocation.slices.append(Slice(key, None, need.fresh_queries, ledger.window[("key", key)], True))
    got = 0
    while got < need.shared_min or (got < need.shared_want and _room(ledger)):
        key = next((k for k in range(_key_count(ledger)) if ledger.room_of(k) > 0), None)
        if key is None:
            if got >= need.shared_min:
                break
            key = min(range(_key_count(ledger)), key=lambda k: ledger.window[("key", k)])
            if ledger.advance(key) > max_window:
                return _short(need, ledger, f"{need.shared_min} queries")
        take = min(ledger.room_of(key), need.shared_want - got)
        window = ledger.spend(key, take)
        allocation.slices.append(Slice(key, None, take, window))
        got += take
    if need.keyless and not ledger.loopback:
        if ledger.room[("address", "peer")] < need.keyless:
            return _short(need, ledger, f"{need.keyless} requests from the one source address")
        ledger.room[("address", "peer")] -= need.keyless
    return allocation


def _key_count(ledger: _Ledger) -> int:
    return sum(1 for r in ledger.room if r[0] == "key")


def _room(ledger: _Ledger) -> bool:
    return any(ledger.room_of(k) > 0 for k in range(_key_count(ledger)))


def _short(need: Need, ledger: _Ledger, what: str) -> Allocation:
    limit = "no limit" if ledger.limit == UNLIMITED else f"{ledger.limit} per window"
    return Allocation(need.test, reason=(
        f"not assessed (budget): {need.test} needs {what}{f' ({need.why})' if need.why else ''}; "
        f"{_key_count(ledger)} key(s) at {limit} cannot cover it after the tests planned before it; "
        "give more --api-key values, or run without -n and allow waiting for the window to reset (--max-wait)"))
