"""A black-box test's view of the live target: its planned clients (``TestBudget``) and ``measure``,
which turns a failed precondition or a spent budget into *not assessed* instead of a verdict."""

from __future__ import annotations

import pytest

from security_tests.contract import NotAssessed
from security_tests.target import BudgetedClient, LiveTarget, allocation_for, planned


class Budget:
    """The clients one black-box test may use, built from its planned slices."""

    def __init__(self, target: LiveTarget, finding_id: str) -> None:
        self.target, self.allocation = target, allocation_for(target, finding_id)
        self._shared = BudgetedClient(target, self.allocation.shared)

    def client(self) -> BudgetedClient:
        return self._shared

    def shared_queries(self) -> int:
        return sum(s.queries for s in self.allocation.shared)

    def fresh(self) -> BudgetedClient:
        return BudgetedClient(self.target, self.allocation.fresh)

    def keyless(self):
        return self.target.http(None, self.allocation.keyless_address)


class Live:
    def __init__(self, target: LiveTarget, items: list) -> None:
        from security_tests.reach import need_of

        self.target, self.profile = target, target.profile
        planned(target, items, lambda item: need_of(item, target.profile))

    def budget(self, finding_id: str) -> Budget:
        try:
            return Budget(self.target, finding_id)
        except NotAssessed as exc:
            pytest.skip(str(exc))

    def first_key(self, budget: Budget) -> str | None:
        return self.target.key(budget.allocation.shared[0].key_index) if budget.allocation.shared else None

    @staticmethod
    def measure(attack):
        """Run an attack; a failed precondition or a spent budget is *not assessed*, never a verdict."""
        try:
            return attack()
        except NotAssessed as exc:
            pytest.skip(str(exc))

