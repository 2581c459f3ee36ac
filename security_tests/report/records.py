"""Test outcomes and evidence as plain rows, and the statuses the report derives from them."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field

from security_tests.contract import Status, Variant


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
        return variant_status(self.variant, self.outcome, self.evidence)

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


def variant_status(variant: Variant | None, outcome: str, evidence: dict) -> Status:
    if outcome in ("error", "skipped", "unknown") or not evidence:
        return {"skipped": Status.NOT_ASSESSED, "error": Status.ERROR}.get(outcome, Status.NOT_RUN)
    succeeded = bool(evidence.get("attack_succeeded"))
    if variant is not None and variant.is_baseline:
        return Status.REPRODUCED if succeeded else Status.NOT_REPRODUCED
    if variant is not None and variant.is_control_isolation:
        return Status.CONTROL_ISOLATED if succeeded and outcome == "passed" else Status.NOT_ISOLATED
    if outcome == "xfailed":
        return Status.RESIDUAL_RISK
    if outcome == "passed":
        return Status.FIXED
    return Status.OPEN


def finding_status(rows: list[TestRow]) -> Status:
    """A finding's status is its worst hardened (or live) row; inherited rows only say it was reproduced."""
    statuses = [row.status for row in rows if row.judges_finding]
    return min(statuses) if statuses else Status.NOT_RUN


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


def finding_status_counts(rows) -> dict[str, int]:
    """How many findings stand at each status: the HTML summary line and findings.json both use it."""
    return dict(Counter(finding_status(group).label for group in rows_by_finding(rows).values()))
