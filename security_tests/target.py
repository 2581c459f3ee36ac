"""Where the assessment points: in-process profiles (default) or a live service described by a target
profile (``--target-profile FILE``, ``--target-url URL``; the URL alone means fraudpipe's own service).

A live target is attacked over real HTTP from the profile alone. Only loopback URLs are accepted unless
``--allow-remote-target`` is given. Every black-box test spends the budget the plan gave it
(``security_tests/budget.py``): its own key and loopback source address, or a share of a window, or,
run serially, a later window after a visible wait.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pytest

from fraudpipe.errors import ConfigError
from fraudpipe.serving.server import is_loopback
from security_tests.targets.profile import TargetProfile, fraudpipe_target, load_profile
from security_tests.attacks.client import Answer, HttpClient
from security_tests.budget import Allocation, BudgetPlan, Slice, make_plan, plan_order, source_addresses
from security_tests.contract import BudgetSpent, NotAssessed

TARGET_KEY = pytest.StashKey["LiveTarget"]()


@dataclass
class LiveTarget:
    url: str
    profile: TargetProfile
    api_keys: list[str]
    loopback: bool
    can_wait: bool
    max_wait: float
    network: str
    plan: BudgetPlan | None = None
    current_window: dict = field(default_factory=dict)
    last_use: dict = field(default_factory=dict)

    @property
    def limit(self) -> int | None:
        return self.profile.rate_limit

    def key(self, index: int | None) -> str | None:
        return self.api_keys[index] if self.api_keys and index is not None else None

    def http(self, key_index: int | None, address: str | None) -> HttpClient:
        return HttpClient(self.url, api_key=self.key(key_index), source_address=address, profile=self.profile)

    def wait_for(self, piece: Slice) -> None:
        """Serial runs only: before a slice in a later window of its key, wait until that key's last
        request is a whole window old, counting down on the console."""
        key = piece.key_index if piece.key_index is not None else -1
        if piece.window <= self.current_window.get(key, 0):
            return
        ready = self.last_use.get(key, 0.0) + self.profile.window_seconds + 1
        while (left := ready - time.monotonic()) > 0:
            sys.__stderr__.write(f"\r[budget] key #{key}: waiting {left:4.0f} s for a fresh rate-limit window ")
            sys.__stderr__.flush()
            time.sleep(min(1.0, left))
        sys.__stderr__.write("\n")
        self.current_window[key] = piece.window

    def used(self, key_index: int | None) -> None:
        self.last_use[key_index if key_index is not None else -1] = time.monotonic()


class BudgetedClient:
    """A client over the slices a test was given: each slice has its own key and source address; asking
    past the last slice raises ``BudgetSpent``."""

    wire_strips_whitespace = True

    def __init__(self, target: LiveTarget, slices: list[Slice]) -> None:
        self.live, self.slices = target, list(slices)
        self.target, self.profile = target.url, target.profile
        self.spent, self._index, self._in_slice, self._client = 0, 0, 0, None

    @property
    def remaining(self) -> int:
        return sum(s.queries for s in self.slices) - self.spent

    def _current(self) -> HttpClient:
        while self._index < len(self.slices) and self._in_slice >= self.slices[self._index].queries:
            self._index, self._in_slice, self._client = self._index + 1, 0, None
        if self._index >= len(self.slices):
            raise BudgetSpent(f"not assessed (budget): the {self.spent} planned queries are spent")
        piece = self.slices[self._index]
        if self._client is None:
            self.live.wait_for(piece)
            self._client = self.live.http(piece.key_index, piece.address)
        return self._client

    def reserve(self, queries: int) -> HttpClient:
        """The current slice's client for a tool that sends ``queries`` requests itself (schemathesis)."""
        client = self._current()
        if self.slices[self._index].queries - self._in_slice < queries:
            raise BudgetSpent(f"not assessed (budget): {queries} queries do not fit the slice left")
        self.spent, self._in_slice = self.spent + queries, self._in_slice + queries
        self.live.used(self.slices[self._index].key_index)
        return client

    def predict(self, payload=None, headers=None, **kwargs) -> Answer:
        client = self._current()
        answer = client.predict(payload, headers=headers, **kwargs)
        self.spent, self._in_slice = self.spent + 1, self._in_slice + 1
        self.live.used(self.slices[self._index].key_index)
        return answer

    def request(self, method: str, path: str, headers=None, body: bytes = b"") -> Answer:
        """Any method and path with this slice's key and address; counted like a prediction."""
        client = self._current()
        answer = client.request(method, path, headers=headers, body=body)
        self.spent, self._in_slice = self.spent + 1, self._in_slice + 1
        self.live.used(self.slices[self._index].key_index)
        return answer

    @property
    def api_key(self) -> str | None:
        return self.live.key(self.slices[0].key_index) if self.slices else None

    def credentials(self) -> dict[str, str]:
        return self.profile.auth_headers(self.api_key)

    def get(self, path: str, headers=None) -> Answer:
        return self.live.http(None, self.slices[0].address if self.slices else None).get(path, headers)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fraudpipe live target (--target-profile / --target-url)")
    group.addoption("--target-profile", default=None, metavar="FILE",
                    help="assess a running service described by a TOML target profile")
    group.addoption("--target-url", default=None,
                    help="URL of the running service (overrides the profile's url; alone, it means fraudpipe)")
    group.addoption("--api-key", action="append", default=[], help="API key for the live target (repeatable)")
    group.addoption("--allow-remote-target", action="store_true", help="permit a non-loopback target URL")
    group.addoption("--expected-rate-limit", type=int, default=None,
                    help="requests per window the live target promises (default: the profile's; fraudpipe 100)")
    group.addoption("--max-wait", type=float, default=300.0, metavar="SECONDS",
                    help="how long a serial run may wait in all for rate-limit windows to reset (default 300)")
    group.addoption("--source-addresses", default="127.0.1.0/24", metavar="CIDR",
                    help="loopback network the per-test source addresses come from (default 127.0.1.0/24)")
    in_process = parser.getgroup("fraudpipe in-process (the default: fraudpipe built per variant)")
    in_process.addoption("--break-control", default=None, metavar="CONTROL",
                         help="switch CONTROL off in the 'hardened' variant, to show that exactly its finding fails")


def _profile(config: pytest.Config) -> TargetProfile | None:
    path, url = config.getoption("target_profile"), config.getoption("target_url")
    if not path and not url:
        return None
    try:
        profile = load_profile(path, url_override=url) if path else fraudpipe_target(url)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    limit = config.getoption("expected_rate_limit")
    if limit is not None:
        from dataclasses import replace

        profile = replace(profile, rate_limit=limit)
    return profile


def pytest_configure(config: pytest.Config) -> None:
    profile = _profile(config)
    if profile is None:
        return
    if config.getoption("break_control"):
        raise pytest.UsageError("--break-control switches a control off in-process; a live target runs as it is")
    if not profile.url:
        raise pytest.UsageError(f"{profile.source} has no url; pass --target-url")
    parsed = urlparse(profile.url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise pytest.UsageError(f"the target URL must be http(s)://HOST:PORT, got {profile.url!r}")
    if not is_loopback(parsed.hostname) and not config.getoption("allow_remote_target"):
        raise pytest.UsageError(f"the target URL {profile.url} is not a loopback address; pass "
                                "--allow-remote-target only for a service you are authorised to attack")
    try:
        network_ok = ipaddress.ip_network(config.getoption("source_addresses"), strict=False).is_loopback
    except ValueError:
        network_ok = False
    if not network_ok:
        raise pytest.UsageError(f"--source-addresses must be a loopback network such as 127.0.1.0/24, got "
                                f"{config.getoption('source_addresses')!r}")
    xdist = bool(getattr(config.option, "numprocesses", None)) or hasattr(config, "workerinput")
    config.stash[TARGET_KEY] = LiveTarget(
        profile.url.rstrip("/"), profile, list(config.getoption("api_key")), is_loopback(parsed.hostname),
        can_wait=not xdist and config.getoption("max_wait") > 0, max_wait=config.getoption("max_wait"),
        network=config.getoption("source_addresses"))


def live_target(config: pytest.Config) -> LiveTarget | None:
    return config.stash.get(TARGET_KEY, None)


def planned(target: LiveTarget, items: list, needs_of) -> BudgetPlan:
    """The plan over the tests that run live, in collection order within four groups: fixed needs on shared
    windows, then the ones that need a whole untouched window, then the ones that take whatever room is left
    (up to ``shared_want``), then the optional parts (dropped first when the budget is short); the same on
    every xdist worker."""
    if target.plan is None:
        needs = [need for item in items if (need := needs_of(item)) is not None]
        needs.sort(key=plan_order)
        keyless = sum(-(-need.keyless // (target.limit or 10**9)) for need in needs)
        addresses = source_addresses(target.network, 2 * len(needs) + keyless + 40) if target.loopback else None
        target.plan = make_plan(needs, len(target.api_keys), target.limit, target.profile.window_seconds,
                                target.loopback, target.can_wait, target.max_wait, addresses)
    return target.plan


def allocation_for(target: LiveTarget, test: str) -> Allocation:
    allocation = target.plan.allocations.get(test) if target.plan else None
    if allocation is None:
        raise NotAssessed(f"not assessed (budget): {test} is not in the query plan")
    if not allocation.assessed:
        raise NotAssessed(allocation.reason)
    return allocation
