"""The contract of the assessment: what a variant means, what an attack must report, how results rank.

Read this module to know how a finding is run and reported:

- a ``Variant`` says how the service is built for one run of a finding (profile, which controls are
  off) and whether the attack must succeed there; ``variants`` builds every variant of a finding;
- an attack returns ``Evidence``: whether it succeeded, a one-line summary, the number of requests it
  sent, named request/response samples, named numbers, charts and free details;
- ``Severity``, ``FindingStatus`` (what a finding comes to) and ``RunResult`` (what one run showed) are
  ordered enums with the labels the report shows; ``NotAssessed`` and its kinds say why nothing was measured.

Nothing here is a pytest fixture: the fixtures in ``security_tests/conftest.py`` build on this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Protocol

from fraudpipe.serving.app import CONTROL_NAMES

TRAINING_CONTROLS: tuple[str, ...] = ("data_gate",)
"""Controls that act when the model is trained, not when it serves."""

@dataclass(frozen=True)
class Variant:
    """One way a finding runs. ``isolates`` names the control switched off to show it alone blocks the attack;
    ``service_off``/``training_off`` are every control that is off (``--break-control`` adds one)."""

    profile: str
    service_off: frozenset[str] = frozenset()
    training_off: frozenset[str] = frozenset()
    isolates: str | None = None
    live: bool = False

    @property
    def name(self) -> str:
        if self.live:
            return "live"
        return f"hardened-without-{self.isolates}" if self.isolates else self.profile

    @property
    def id(self) -> str:
        """The text in test ids and the report: ``inherited``, ``hardened``, ``hardened-without-auth``, ``live``."""
        return self.name

    @property
    def is_control_isolation(self) -> bool:
        return self.isolates is not None

    @property
    def is_baseline(self) -> bool:
        """The service as acquired: the attack must reproduce here."""
        return self.profile == "inherited"

    @property
    def judges_fix(self) -> bool:
        """Hardened (or live) with no control isolated: these runs decide whether a finding is fixed."""
        return self.profile == "hardened" and not self.is_control_isolation

    @property
    def attack_should_succeed(self) -> bool:
        return self.is_baseline or self.is_control_isolation

    def control_on(self, control: str) -> bool:
        """Whether ``control`` (service or training) is on; a live target is assumed hardened."""
        return self.profile == "hardened" and control not in self.service_off | self.training_off

    def as_dict(self) -> dict:
        return {"id": self.id, "profile": self.profile, "service_off": sorted(self.service_off),
                "training_off": sorted(self.training_off), "isolates": self.isolates, "live": self.live}

    @classmethod
    def from_dict(cls, data: dict) -> Variant:
        return cls(data["profile"], frozenset(data["service_off"]), frozenset(data["training_off"]),
                   data["isolates"], data["live"])


def _without(profile: str, controls: set[str], isolates: str | None = None) -> Variant:
    unknown = controls - set(CONTROL_NAMES) - set(TRAINING_CONTROLS)
    if unknown:
        raise ValueError(f"unknown control(s) {sorted(unknown)}; choose from "
                         f"{', '.join(CONTROL_NAMES + TRAINING_CONTROLS)}")
    return Variant(profile, frozenset(controls & set(CONTROL_NAMES)), frozenset(controls & set(TRAINING_CONTROLS)),
                   isolates)


INHERITED = Variant("inherited")
HARDENED = Variant("hardened")
LIVE = Variant("hardened", live=True)


def hardened_without(control: str) -> Variant:
    return _without("hardened", {control}, isolates=control)


class HasControl(Protocol):
    """What ``variants`` needs of a finding (the catalog's ``Finding`` has it; the contract does not import
    the catalog, which imports the contract)."""

    residual: bool
    control: str | None


def variants(finding: HasControl, broken: str | None = None, live: bool = False) -> list[Variant]:
    """Every variant of ``finding``: inherited, hardened (with ``broken`` off: ``--break-control``) and
    hardened without the finding's control; a residual finding has no control to isolate; against a live
    target the one variant is the running service."""
    if live:
        return [LIVE]
    hardened = _without("hardened", {broken}) if broken else HARDENED
    isolation = [] if finding.residual or finding.control is None else [hardened_without(finding.control)]
    return [INHERITED, hardened, *isolation]


@dataclass
class Evidence:
    """What one attack measured. ``queries`` counts every request the attack sent; ``samples`` are
    ``{"label", "request", "response"}`` dicts the report prints; ``residual`` is a sentence for the
    report's residual-risk list when it holds on the hardened service."""

    attack_succeeded: bool
    summary: str
    queries: int
    samples: list[dict] = field(default_factory=list)
    measurements: dict[str, float | int | None] = field(default_factory=dict)
    charts: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    residual: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def expect_attack(variant: Variant, evidence: Evidence) -> None:
    """The one assertion every finding makes: the attack succeeds exactly where the control is off."""
    expected = variant.attack_should_succeed
    assert evidence.attack_succeeded is expected, (
        f"{variant.id}: attack {'should succeed' if expected else 'should be blocked'}, "
        f"measured: {evidence.summary}")


class _Ranked(Enum):
    """Members are ``(label, rank, ...)``; a lower rank is worse and sorts first. Colours are the renderers'
    business (``security_tests/report/colours.py``), not the contract's."""

    def __init__(self, label: str, rank: int, *_) -> None:
        self.label, self.rank = label, rank

    @classmethod
    def from_label(cls, label: str):
        for member in cls:
            if member.label == label:
                return member
        raise ValueError(f"no {cls.__name__} labelled {label!r}")

    def __lt__(self, other):
        return self.rank < other.rank

    def __str__(self) -> str:
        return self.label


class Severity(_Ranked):
    """CVSS 3.1 bands, worst first; ``floor`` is the lowest base score of the band."""

    CRITICAL = ("Critical", 0, 9.0)
    HIGH = ("High", 1, 7.0)
    MEDIUM = ("Medium", 2, 4.0)
    LOW = ("Low", 3, 0.1)
    NONE = ("None", 4, 0.0)

    def __init__(self, label: str, rank: int, floor: float) -> None:
        super().__init__(label, rank)
        self.floor = floor


class FindingStatus(_Ranked):
    """What the assessment concludes about one finding, from its deciding runs (``report/status.py``).

    Members are ``(label, rank, code, meaning)``; ``code`` is the stable machine code findings.json carries
    as ``status_code``. ``HELD`` is what a run against a single target (no as-acquired or control-off runs)
    says instead of ``FIXED``: it measured the attack blocked, not a before and after.
    """

    OPEN = ("OPEN", 0, "open", "the attack succeeded on the hardened service: the control does not hold")
    ERROR = ("Error", 1, "error", "a run of this finding failed or errored, so the result is not verified")
    RESIDUAL_RISK = ("OPEN (residual risk)", 2, "residual_open",
                     "no control removes this risk: the attack succeeded on the hardened service, as expected")
    CONTROL_VERIFIED_RESIDUAL = ("Control verified, residual risk remains", 3, "control_verified_residual_remains",
                                 "the control blocks this attack, but the measured risk behind it remains")
    FIXED = ("Verified fixed", 4, "fixed",
             "the attack succeeded as acquired and with the control off, and failed on the hardened service")
    HELD = ("Held", 5, "held", "the attack was blocked on this target")
    NOT_ASSESSED = ("Not assessed", 6, "not_assessed", "not measured in this run (the reason is given); check by hand")
    NOT_RUN = ("Not run", 7, "not_run", "no test of this finding ran")
    NOT_REPRODUCED = ("Not reproduced", 8, "not_reproduced",
                      "the attack failed where it was expected to succeed: the risk did not reproduce on this target")

    def __init__(self, label: str, rank: int, code: str, meaning: str) -> None:
        super().__init__(label, rank)
        self.code, self.meaning = code, meaning

    def meaning_on(self, single_target: bool) -> str:
        """The meaning as a reader of this run needs it: a single target has no hardened/acquired pair."""
        if single_target and self in _SINGLE_TARGET_MEANINGS:
            return _SINGLE_TARGET_MEANINGS[self]
        return self.meaning

    @property
    def is_open(self) -> bool:
        """Measured open: a control failed, the run errored, or a risk no control removes holds. What the
        gate, SARIF results and accepted risks count as open (a verified control whose risk lives in another
        finding is not: that finding is the open one)."""
        return self in (FindingStatus.OPEN, FindingStatus.ERROR, FindingStatus.RESIDUAL_RISK)

    @property
    def counts_as_closed(self) -> bool:
        """Measured blocked: what ``--compare-to`` calls fixed and SARIF leaves out."""
        return self in (FindingStatus.FIXED, FindingStatus.HELD)


_SINGLE_TARGET_MEANINGS = {
    FindingStatus.OPEN: "the attack succeeded on this target",
    FindingStatus.RESIDUAL_RISK: "no control removes this risk: the attack succeeded on this target",
    FindingStatus.CONTROL_VERIFIED_RESIDUAL: "the attack was blocked on this target, but the measured risk "
                                             "behind it remains",
}


class RunResult(_Ranked):
    """What one run of one test showed; a finding's status is decided from these (``report/status.py``).

    Members are ``(label, rank, code, words)``: ``words`` is the sentence a reader sees beside the run.
    """

    SUCCEEDED = ("Attack succeeded", 0, "attack_succeeded", "FAILED: control did not hold")
    UNEXPECTED = ("Unexpected result", 1, "unexpected", "FAILED: unexpected result")
    ERROR = ("Error", 2, "error", "error: the run did not complete")
    NOT_ISOLATED = ("Not isolated", 3, "not_isolated", "FAILED: with this control off the attack still failed")
    RESIDUAL_OPEN = ("OPEN (residual risk)", 4, "residual_open", "attack succeeded (open residual risk)")
    BLOCKED_RESIDUAL = ("Blocked, residual risk remains", 5, "blocked_residual",
                        "attack blocked; a measured risk remains")
    BLOCKED = ("Blocked", 6, "blocked", "attack blocked")
    CHECK_PASSED = ("Check passed", 7, "check_passed", "check passed")
    REPRODUCED = ("Reproduced", 8, "reproduced", "attack succeeded (expected)")
    CONTROL_ISOLATED = ("Control isolated", 9, "control_isolated", "attack succeeded (expected)")
    NOT_REPRODUCED = ("Not reproduced", 10, "not_reproduced", "attack blocked: the risk did not reproduce")
    NOT_ASSESSED = ("Not assessed", 11, "not_assessed", "not assessed")
    NOT_RUN = ("Not run", 12, "not_run", "did not report")

    def __init__(self, label: str, rank: int, code: str, words: str) -> None:
        super().__init__(label, rank)
        self.code, self.words = code, words


class NotAssessed(Exception):
    """Raised when a precondition of a measurement fails (the target did not answer, the positive example
    is not answered positive): the finding is reported *not assessed* with this reason, never open or
    fixed on nothing measured. ``kind`` says why, for the report; raise it anywhere in a test."""

    kind = "precondition"


class BudgetSpent(NotAssessed):
    """The test asked for more queries than the plan gave it, or the plan could not give it any."""

    kind = "budget"


class TargetMisbehaved(NotAssessed):
    """The target broke a rule of the assessor's HTTP session (an answer over the cap, no answer in time, a
    redirect, JSON nested too deep): what it sent measures nothing, so the finding that needed it is *not
    assessed (the target)* with the rule it broke, never held on an answer the assessor refused to read."""

    kind = "target"


class Inconclusive(NotAssessed):
    """The attack ran but what it measured cannot tell an open risk from a held one (every answer one label):
    *not assessed (inconclusive)* with what was tried, never "not reproduced"."""

    kind = "inconclusive"


class NeedsInside(NotAssessed):
    """A grey-box finding whose section the target profile leaves out (``[audit]``, ``[artifacts]``,
    ``[environment]``): *not assessed (needs the inside)*, with the section that would assess it."""

    kind = "needs_inside"


def grey_box_part(part, section: str, finding_id: str):
    """The profile's ``section`` for ``finding_id``, or ``NeedsInside`` naming the section to add."""
    if part is None:
        raise NeedsInside(f"not assessed (needs the inside): add [{section}] to the target profile to assess "
                          f"{finding_id} on this target")
    return part
