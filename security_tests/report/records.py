"""What the plugin collects about each test: one ``TestRow`` per assessed test, JSON-safe, with its
typed run result (``report/status.py`` decides it) and, for a skip, why nothing was measured."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from security_tests.contract import RunResult, Variant
from security_tests.report.status import run_result


def jsonable(value):
    """Coerce numpy scalars and arrays, paths and sets, so evidence survives the trip to the xdist controller."""
    def default(obj):
        if hasattr(obj, "tolist"):
            return obj.tolist()
        if isinstance(obj, (set, frozenset, tuple)):
            return list(obj)
        return str(obj)

    def clean(obj):
        if isinstance(obj, float) and not math.isfinite(obj):
            return str(obj)
        if isinstance(obj, dict):
            return {str(k): clean(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj

    return clean(json.loads(json.dumps(value, default=default)))


def recorded(evidence: dict) -> dict:
    """Evidence as it is recorded, once, for every output: JSON-safe, with keys hidden, text inert and bounded
    (``security_tests.redaction``)."""
    from security_tests.redaction import scrub

    return scrub(jsonable(evidence))


NOT_ASSESSED_WORDS = {"precondition": "precondition not met", "budget": "budget", "inconclusive": "inconclusive",
                      "needs_inside": "needs the inside", "skipped": "skipped",
                      "target": "the target broke the assessor's rules"}
"""How each kind of *not assessed* reads (``contract.NotAssessed.kind``, plus the plugin's own two)."""


@dataclass(frozen=True)
class NotAssessedNote:
    """Why a run measured nothing: a ``NotAssessed`` kind (precondition, budget, inconclusive), ``needs_inside``
    for a white-box test against a live target, or ``skipped`` for any other skip."""

    kind: str
    reason: str

    @property
    def text(self) -> str:
        """"not assessed (inconclusive): what was tried"; a reason already worded so is kept as it is."""
        if self.reason.lower().startswith("not assessed"):
            return self.reason
        return f"not assessed ({NOT_ASSESSED_WORDS.get(self.kind, self.kind)}): {self.reason}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "reason": self.reason}


@dataclass
class TestRow:
    nodeid: str
    outcome: str = "unknown"
    duration: float = 0.0
    finding: str | None = None
    variant: Variant | None = None
    evidence: dict = field(default_factory=dict)
    message: str = ""
    context: bool = False
    strict_xpass: bool = False
    """A strict xfail (a residual risk) passed: recorded by the plugin from the call, not read from a message."""
    not_assessed: NotAssessedNote | None = None

    @property
    def result(self) -> RunResult:
        succeeded = self.evidence.get("attack_succeeded") if self.evidence else None
        return run_result(self.variant, self.outcome, None if succeeded is None else bool(succeeded),
                          self.strict_xpass, bool(self.evidence.get("residual")) if self.evidence else False)

    @property
    def judges_finding(self) -> bool:
        """Hardened and live rows (and a finding's checks without variants) decide its status."""
        return self.variant.judges_fix if self.variant is not None else not self.context

    @property
    def summary(self) -> str:
        """What this run measured in one line: its evidence's summary, or why it measured nothing."""
        if self.outcome == "skipped":
            return self.not_assessed.text if self.not_assessed else self.message
        return str(self.evidence.get("summary") or "") if self.evidence else ""


def rows_by_finding(rows) -> dict[str, list[TestRow]]:
    grouped: dict[str, list[TestRow]] = {}
    for row in rows:
        if row.finding:
            grouped.setdefault(row.finding, []).append(row)
    return grouped


OUTCOME_WORDS = {"passed": ("passed", "passed"), "failed": ("failed", "failed"), "error": ("error", "errors"),
                 "xfailed": ("expected failure (open residual risk)", "expected failures (open residual risks)"),
                 "xpassed": ("unexpectedly passed", "unexpectedly passed"),
                 "skipped": ("skipped (not assessed)", "skipped (not assessed)"),
                 "unknown": ("did not report", "did not report")}
