"""Test outcomes and evidence as plain rows, and the statuses the report derives from them."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field

from security_tests.contract import Status, Variant
from security_tests.findings import BY_ID


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

    @property
    def status(self) -> Status:
        return variant_status(self.variant, self.outcome, self.evidence, self.message)

    @property
    def judges_finding(self) -> bool:
        """Hardened and live rows (and a finding's checks without variants) decide its status."""
        return self.variant.judges_fix if self.variant is not None else not self.context

    def as_dict(self) -> dict:
        variant = self.variant
        return dict(asdict(self), variant=variant.id if variant else None,
                    variant_detail=variant.as_dict() if variant else None,
                    control_isolation=bool(variant and variant.is_control_isolation),
                    judges_fix=bool(variant and variant.judges_fix), status=self.status.label)


def variant_status(variant: Variant | None, outcome: str, evidence: dict, message: str = "") -> Status:
    """A residual risk whose attack failed on this target (strict XPASS, red) is *not reproduced*, not open."""
    if outcome in ("error", "skipped", "unknown") or not evidence:
        return {"skipped": Status.NOT_ASSESSED, "error": Status.ERROR}.get(outcome, Status.NOT_RUN)
    succeeded = bool(evidence.get("attack_succeeded"))
    if variant is not None and variant.is_baseline:
        return Status.REPRODUCED if succeeded else Status.NOT_REPRODUCED
    if variant is not None and variant.is_control_isolation:
        return Status.CONTROL_ISOLATED if succeeded and outcome == "passed" else Status.NOT_ISOLATED
    if outcome == "xfailed":
        return Status.RESIDUAL_RISK
    if outcome == "failed" and variant is not None and variant.judges_fix and not succeeded \
            and evidence.get("residual") is not None and message.startswith("[XPASS(strict)]"):
        return Status.NOT_REPRODUCED
    if outcome == "passed":
        return Status.CONTROL_VERIFIED_RESIDUAL if evidence.get("residual") else Status.FIXED
    return Status.OPEN


def finding_status(rows: list[TestRow]) -> Status:
    """A finding's status is its worst hardened (or live) row; a failed baseline or isolation run leaves
    the fix unverified (Error)."""
    statuses = [row.status for row in rows if row.judges_finding]
    if not statuses:
        return Status.NOT_RUN
    worst = min(statuses)
    if worst in (Status.FIXED, Status.CONTROL_VERIFIED_RESIDUAL) and any(
            row.outcome in ("failed", "error") for row in rows if not row.judges_finding):
        return Status.ERROR
    return worst


def inherited_status(rows: list[TestRow]) -> str:
    statuses = {row.status for row in rows if row.variant is not None and row.variant.is_baseline}
    if not statuses:
        return "n/a"
    return ", ".join(sorted(s.label for s in statuses))


def rows_by_finding(rows) -> dict[str, list[TestRow]]:
    grouped: dict[str, list[TestRow]] = {}
    for row in rows:
        if row.finding:
            grouped.setdefault(row.finding, []).append(row)
    return grouped


def finding_statuses(rows) -> dict[str, Status]:
    """Every finding that ran, with its one status: the console, findings.json, HTML and PDF all use this.
    A fixed finding whose catalog entry names where its remaining risk lives (``residual_in``) reads
    "control verified, residual risk remains" only while that finding is measured open in this run."""
    statuses = {fid: finding_status(group) for fid, group in rows_by_finding(rows).items()}
    for fid, status in statuses.items():
        holders = BY_ID[fid].residual_in if fid in BY_ID else ()
        if status == Status.FIXED and any(statuses.get(h) in (Status.RESIDUAL_RISK, Status.OPEN) for h in holders):
            statuses[fid] = Status.CONTROL_VERIFIED_RESIDUAL
    return statuses


def finding_status_counts(rows) -> dict[str, int]:
    """How many findings stand at each status, worst first."""
    counts = Counter(finding_statuses(rows).values())
    return {status.label: counts[status] for status in sorted(counts)}


OUTCOME_WORDS = {"passed": ("passed", "passed"), "failed": ("failed", "failed"), "error": ("error", "errors"),
                 "xfailed": ("expected failure (open residual risk)", "expected failures (open residual risks)"),
                 "xpassed": ("unexpectedly passed", "unexpectedly passed"),
                 "skipped": ("skipped (not assessed)", "skipped (not assessed)"),
                 "unknown": ("did not report", "did not report")}


def test_count(rows) -> dict:
    """The one count of assessment test cases, with what it counts, for every output."""
    outcomes = Counter(row.outcome for row in rows)
    parts = [f"{outcomes[o]} {words[outcomes[o] != 1]}" for o, words in OUTCOME_WORDS.items() if outcomes[o]]
    total = sum(outcomes.values())
    return {"total": total, "outcomes": dict(sorted(outcomes.items())),
            "sentence": f"{total} assessment test cases: " + ", ".join(parts)}


def findings_sentence(counts: dict[str, int]) -> str:
    return f"{sum(counts.values())} findings: " + "; ".join(f"{n} {label}" for label, n in counts.items())
