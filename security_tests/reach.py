"""How a test reaches its target: one interface, two ways.

A finding's test asks its ``Reach`` for clients by the role they play in the attack (the assessor's
client with a valid key, a client without one, a key on an untouched rate-limit window, the same key from
another address, another key from the same address). In-process the clients drive an app built for the
variant through Flask's test client; against a live target they come from the query plan
(``security_tests/budget.py``), each with its own key and loopback source address. The test body is the same
both ways, so the live run gets the whole attack family, and every attack reads the target from
``reach.profile``.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import TYPE_CHECKING

from security_tests import markers
from security_tests.attacks.client import Client, FlaskClient
from security_tests.budget import Need
from security_tests.contract import BudgetSpent, NotAssessed, Variant
from security_tests.targets.profile import TargetProfile

if TYPE_CHECKING:
    from fraudpipe.settings import Settings
    from security_tests.target import BudgetedClient, LiveTarget


def need_of(item, profile: TargetProfile) -> Need | None:
    """The budget a collected test asks for against ``profile`` (None: it sends nothing to a live target)."""
    if markers.finding_of(item) is None:
        return None
    needs = [attack.spends(profile) for attack in markers.attacks_of(item) if getattr(attack, "spends", None)]
    if not needs:
        return None
    total = needs[0]
    for more in needs[1:]:
        total = Need("", total.shared_min + more.shared_min, total.shared_want + more.shared_want,
                     max(total.fresh, more.fresh), max(total.fresh_queries, more.fresh_queries),
                     total.keyless + more.keyless, "; ".join(filter(None, (total.why, more.why))),
                     total.optional and more.optional)
    return replace(total, test=plan_name(item))


def plan_name(item) -> str:
    """The test's name in the plan and the report: ``CRIT-1 test_requests_without_a_valid_key_get_no_answer``."""
    return f"{markers.finding_of(item)} {item.originalname}"


class Reach(ABC):
    """The clients one run of a test may use, by role; ``profile`` describes the target."""

    profile: TargetProfile
    variant: Variant
    live: bool = False

    @property
    @abstractmethod
    def key(self) -> str | None:
        """The valid key the assessor's client carries (None against a target that was given none)."""

    @abstractmethod
    def client(self) -> Client:
        ...

    @abstractmethod
    def keyless(self) -> Client:
        """A client that sends no credential unless the attack sets headers itself."""

    @abstractmethod
    def fresh(self) -> Client:
        """A client with a valid key on a rate-limit window nothing else in this run has touched."""

    @abstractmethod
    def same_key_elsewhere(self) -> Client | None:
        ...

    @abstractmethod
    def other_key_same_address(self) -> Client | None:
        ...

    @abstractmethod
    def shared_queries(self) -> int:
        """How many queries ``client()`` may send (unbounded in-process)."""


def deployed_app(variant: Variant, settings: Settings):
    """The variant's app as ``serve`` builds it for a worker: with Redis storage, the monitor orders answers in
    the host's table (``host_monitor_for``) and not through Redis, so a Redis outage reaches the limiter alone,
    as in production, instead of being refused by the monitor too (which hid a limiter that failed open)."""
    from fraudpipe.serving.app import create_app
    from fraudpipe.serving.server import host_monitor_for

    return create_app(variant.profile, settings=settings, controls_off=variant.service_off,
                      host_monitor=host_monitor_for(settings, variant.profile))


class InProcessReach(Reach):
    """fraudpipe built for one variant; each ``fresh()`` is a new app, so its limiter counts start at zero."""

    OTHER_ADDRESS = "203.0.113.77"

    def __init__(self, variant: Variant, settings: Settings, key: str, profile: TargetProfile) -> None:
        self.variant, self.profile = variant, profile
        self._key, self._second = key, f"second-{secrets.token_urlsafe(18)}"
        self._settings = (settings.with_overrides(api_keys=(*settings.api_keys, self._second)) if settings.api_keys
                          else settings)
        self._app = self._fresh_app = None

    @property
    def key(self) -> str:
        return self._key

    @property
    def app(self):
        if self._app is None:
            self._app = self._build()
        return self._app

    def _build(self):
        return deployed_app(self.variant, self._settings)

    def client(self) -> FlaskClient:
        return FlaskClient(self.app, api_key=self._key, profile=self.profile)

    def keyless(self) -> FlaskClient:
        return FlaskClient(self.app, api_key=None, profile=self.profile)

    def fresh(self) -> FlaskClient:
        self._fresh_app = self._build()
        return FlaskClient(self._fresh_app, api_key=self._key, profile=self.profile)

    def same_key_elsewhere(self) -> FlaskClient:
        """The key of the last ``fresh()`` window (else ``client()``'s) from another address, on the same app."""
        return FlaskClient(self._fresh_app or self.app, api_key=self._key, remote_addr=self.OTHER_ADDRESS,
                           profile=self.profile)

    def other_key_same_address(self) -> FlaskClient:
        return FlaskClient(self._fresh_app or self.app, api_key=self._second, profile=self.profile)

    def shared_queries(self) -> int:
        return 10**9


class LiveReach(Reach):
    """A running service: clients from the slices the plan gave this test."""

    live = True

    def __init__(self, variant: Variant, target: LiveTarget, test: str) -> None:
        from security_tests.target import BudgetedClient, allocation_for

        self.variant, self.target, self.profile = variant, target, target.profile
        self.allocation = allocation_for(target, test)
        self._shared: BudgetedClient = BudgetedClient(target, self.allocation.shared)
        self._fresh: BudgetedClient | None = None

    @property
    def key(self) -> str | None:
        shared = self.allocation.shared
        return self.target.key(shared[0].key_index) if shared else None

    def client(self) -> BudgetedClient:
        return self._shared

    def keyless(self) -> KeylessClient:
        return KeylessClient(self.target, self.allocation.keyless_addresses)

    def fresh(self) -> BudgetedClient:
        if self._fresh is None:
            if not self.allocation.fresh:
                raise BudgetSpent("not assessed (budget): the plan gave this test no untouched window")
            from security_tests.target import BudgetedClient

            self._fresh = BudgetedClient(self.target, self.allocation.fresh)
        return self._fresh

    def same_key_elsewhere(self):
        fresh, address = self.allocation.fresh[:1], self.allocation.keyless_address
        return self.target.http(fresh[0].key_index, address) if fresh and address else None

    def other_key_same_address(self):
        fresh = self.allocation.fresh[:1]
        other = next((s for s in self.allocation.shared if fresh and s.key_index != fresh[0].key_index), None)
        return self.target.http(other.key_index, fresh[0].address) if other and fresh[0].address else None

    def shared_queries(self) -> int:
        return sum(s.queries for s in self.allocation.shared)


class KeylessClient:
    """Requests without a key from the plan's source addresses, moving to the next one after each window's
    worth, so a per-address limit refuses none of them for volume (a refusal must come from the auth check)."""

    wire_strips_whitespace = True
    api_key = None

    def __init__(self, target: LiveTarget, addresses: list[str]) -> None:
        self.target, self.profile = target.url, target.profile
        self._live, self._addresses, self._sent = target, addresses or [None], 0

    def _client(self):
        per = self._live.limit or 10**9
        index = min(self._sent // per, len(self._addresses) - 1)
        self._sent += 1
        return self._live.http(None, self._addresses[index])

    def credentials(self) -> dict[str, str]:
        return {}

    def predict(self, payload=None, headers=None, **kwargs):
        return self._client().predict(payload, headers=headers if headers is not None else {}, **kwargs)

    def get(self, path: str, headers=None):
        return self._client().get(path, headers)

    def request(self, method: str, path: str, headers=None, body: bytes = b""):
        return self._client().request(method, path, headers, body)


def require(condition: bool, reason: str) -> None:
    """A precondition of a measurement: when it fails the run is *not assessed* with ``reason``."""
    if not condition:
        raise NotAssessed(reason)
