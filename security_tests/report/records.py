"""Test outcomes and evidence as plain rows, and the statuses the report derives from them."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field


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
    variant: str | None = None
    evidence: dict = field(default_factory=dict)
    message: str = ""
    context: bool = False

    @property
    def status(self) -> str:
        return variant_status(self.variant, self.outcome, self.evidence)

    def as_dict(self) -> dict:
        return dict(asdict(self), status=self.status)


def variant_status(variant: str | None, outcome: str, evidence: dict) -> str:
    if outcome in ("error", "skipped", "unknown") or not evidence:
        return {"skipped": "Not assessed", "error": "Error"}.get(outcome, "Not run")
    succeeded = bool(evidence.get("attack_succeeded"))
    if variant == "inherited":
        return "Reproduced" if succeeded else "Not reproduced"
    if variant and variant.startswith("hardened-without-"):
        return "Control isolated" if succeeded and outcome == "passed" else "Not isolated"
    if outcome == "xfailed":
        return "OPEN (residual risk)"
    if outcome == "passed":
        return "Verified fixed"
    return "OPEN"


def finding_status(rows: list[TestRow]) -> str:
    """A finding's status is its worst hardened (or live) row; inherited rows only say it was reproduced."""
    ranked = ["OPEN", "Error", "OPEN (residual risk)", "Verified fixed", "Not assessed"]
    statuses = [row.status for row in rows if row.variant in ("hardened", "live") or
                (row.variant is None and not row.context)]
    known = [s for s in statuses if s in ranked]
    if known:
        return min(known, key=ranked.index)
    return statuses[0] if statuses else "Not run"


def inherited_status(rows: list[TestRow]) -> str:
    statuses = {row.status for row in rows if row.variant == "inherited"}
    if not statuses:
        return "n/a"
    return "Reproduced" if statuses == {"Reproduced"} else ", ".join(sorted(statuses))


def rows_by_finding(rows) -> dict[str, list[TestRow]]:
    grouped: dict[str, list[TestRow]] = {}
    for row in rows:
        if row.finding:
            grouped.setdefault(row.finding, []).append(row)
    return grouped


def finding_status_counts(rows) -> dict[str, int]:
    """How many findings stand at each status: the HTML summary line and findings.json both use it."""
    return dict(Counter(finding_status(group) for group in rows_by_finding(rows).values()))
