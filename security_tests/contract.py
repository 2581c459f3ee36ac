"""The contract of the assessment: what a variant means, what an attack must report, how results rank.

Read this module to know how a finding is run and reported:

- a ``Variant`` says how the service is built for one run of a finding (profile, which controls are
  off) and whether the attack must succeed there; ``variants`` builds every variant of a finding;
- an attack returns ``Evidence``: whether it succeeded, a one-line summary, the number of requests it
  sent, named request/response samples, named numbers, charts and free details;
- ``Severity`` and ``Status`` are ordered enums with the label and colour the report shows.

Nothing here is a pytest fixture: the fixtures in ``security_tests/conftest.py`` build on this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from fraudpipe.serving.app import CONTROL_NAMES

if TYPE_CHECKING:
    from security_tests.findings import Finding

TRAINING_CONTROLS: tuple[str, ...] = ("data_gate",)
"""Controls that act when the model is trained, not when it serves."""

RED, ORANGE, GREEN, BLUE, GREY, DARK_RED = (190, 30, 30), (200, 110, 0), (26, 127, 55), (60, 110, 160), \
    (90, 90, 90), (128, 0, 0)


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


def variants(finding: Finding, broken: str | None = None, live: bool = False) -> list[Variant]:
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
    """Members are ``(label, rank, colour)``; a lower rank is worse and sorts first."""

    def __init__(self, label: str, rank: int, colour: tuple[int, int, int]) -> None:
        self.label, self.rank, self.colour = label, rank, colour

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

    CRITICAL = ("Critical", 0, DARK_RED, 9.0)
    HIGH = ("High", 1, RED, 7.0)
    MEDIUM = ("Medium", 2, ORANGE, 4.0)
    LOW = ("Low", 3, BLUE, 0.1)
    NONE = ("None", 4, GREY, 0.0)

    def __init__(self, label: str, rank: int, colour: tuple[int, int, int], floor: float) -> None:
        super().__init__(label, rank, colour)
        self.floor = floor


class Status(_Ranked):
    """One status model for the console, findings.json, the HTML page and the PDF.

    Members are ``(label, rank, colour, code, meaning)``. The first six are finding statuses (``code`` is
    the stable machine code findings.json carries as ``status_code``); the rest describe single runs.
    A finding's status is its worst hardened (or live) run, lifted to ``CONTROL_VERIFIED_RESIDUAL`` where
    the control holds but a measured risk remains (see ``records.finding_status``).
    """

    OPEN = ("OPEN", 0, RED, "open", "the attack succeeded on the hardened service: the control does not hold")
    ERROR = ("Error", 1, RED, "error", "a run of this finding failed or errored, so the result is not verified")
    RESIDUAL_RISK = ("OPEN (residual risk)", 2, ORANGE, "residual_open",
                     "no control removes this risk: the attack succeeded on the hardened service, as expected")
    CONTROL_VERIFIED_RESIDUAL = ("Control verified, residual risk remains", 3, ORANGE,
                                 "control_verified_residual_remains",
                                 "the control blocks this attack, but the measured risk behind it remains")
    FIXED = ("Verified fixed", 4, GREEN, "fixed",
             "the attack succeeded as acquired and with the control off, and failed on the hardened service")
    NOT_ASSESSED = ("Not assessed", 5, GREY, "not_assessed", "not run against this target; check by hand")
    NOT_RUN = ("Not run", 6, GREY, "not_run", "no test of this finding ran")
    REPRODUCED = ("Reproduced", 7, RED, "reproduced", "the attack succeeded on the service as acquired")
    NOT_REPRODUCED = ("Not reproduced", 8, ORANGE, "not_reproduced",
                      "the attack failed on the service as acquired: the finding did not reproduce")
    CONTROL_ISOLATED = ("Control isolated", 9, GREEN, "control_isolated",
                        "with only this control off the attack succeeded again: this control is what blocks it")
    NOT_ISOLATED = ("Not isolated", 10, RED, "not_isolated",
                    "with this control off the attack still failed: something else blocks it")

    def __init__(self, label: str, rank: int, colour: tuple[int, int, int], code: str, meaning: str) -> None:
        super().__init__(label, rank, colour)
        self.code, self.meaning = code, meaning

    @classmethod
    def finding_statuses(cls) -> tuple[Status, ...]:
        return (cls.OPEN, cls.ERROR, cls.RESIDUAL_RISK, cls.CONTROL_VERIFIED_RESIDUAL, cls.FIXED, cls.NOT_ASSESSED)

    @property
    def is_open(self) -> bool:
        """Open risk on the hardened service, whether a control failed or none exists."""
        return self in (Status.OPEN, Status.ERROR, Status.RESIDUAL_RISK, Status.CONTROL_VERIFIED_RESIDUAL)


class NotAssessed(Exception):
    """Raised when a precondition of a measurement fails (the target did not answer, the positive example
    is not answered positive): the finding is reported *not assessed* with this reason, never open or
    fixed on nothing measured. ``kind`` says why, for the report; raise it anywhere in a test."""

    kind = "precondition"


class BudgetSpent(NotAssessed):
    """The test asked for more queries than the plan gave it, or the plan could not give it any."""

    kind = "budget"


class Inconclusive(NotAssessed):
    """The attack ran but what it measured cannot tell an open risk from a held one (every answer one label):
    *not assessed (inconclusive)* with what was tried, never "not reproduced"."""

    kind = "inconclusive"
