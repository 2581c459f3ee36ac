"""The assessment's markers, declared and read in one place: what each means, and the one function that
reads it from a collected test. The fixtures, the query plan, the conformance check and the report all ask
here, so a marker cannot mean one thing to the runner and another to the report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Marker:
    name: str
    signature: str
    meaning: str


FINDING = Marker("finding", "finding(id)", "the catalog finding a security test measures")
ATTACK = Marker("attack", "attack(*fns)", "the attacks a finding's test runs (set with @runs); those that declare "
                "what they spend (budget.spends) make the test run against a live target too")
WHITE_BOX = Marker("white_box", "white_box(reason)",
                   "needs the service's inside; against a live target it is reported not assessed (needs_inside)")
CONTEXT = Marker("assessment_context", "assessment_context",
                 "records the target and model under assessment for the report")
SLOW = Marker("slow", "slow", "heavier attacks (ART); CI runs them too")
MARKERS = (FINDING, ATTACK, WHITE_BOX, CONTEXT, SLOW)


def register(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", f"{marker.signature}: {marker.meaning}")


def runs(*attacks: Callable):
    """Mark a finding's test with the attacks it runs (``@runs(bypass_family)``): the plan reads what they
    spend, the conformance check which attack module serves which finding."""
    return pytest.mark.attack.with_args(*attacks)


def finding_of(item) -> str | None:
    marker = item.get_closest_marker(FINDING.name)
    return marker.args[0] if marker is not None else None


def attacks_of(item) -> tuple[Callable, ...]:
    marker = item.get_closest_marker(ATTACK.name)
    return tuple(marker.args) if marker is not None else ()


def runs_live(item) -> bool:
    """A test runs against a live target when an attack it runs declares what it spends."""
    return any(getattr(attack, "spends", None) for attack in attacks_of(item))


def white_box_reason(item) -> str | None:
    """What to check by hand when the test cannot run against a live target (None: not white-box)."""
    marker = item.get_closest_marker(WHITE_BOX.name)
    if marker is None:
        return None
    return marker.args[0] if marker.args else "needs the inside"


def is_context(item) -> bool:
    return item.get_closest_marker(CONTEXT.name) is not None
