"""The assessment as one typed model: built once from the collected rows (``assessment.build_assessment``),
added to by the CI options through typed fields (acceptances, comparison, gate), and read by every
renderer: HTML, PDF, findings.json (``Assessment.as_json``), SARIF, the markdown summary and the console.
No renderer decides a status; each reads ``FindingResult.status`` and the runs that decided it."""

from __future__ import annotations

from dataclasses import dataclass, field

from security_tests.contract import FindingStatus, RunResult, Variant
from security_tests.findings import WordedFinding
from security_tests.report.records import NotAssessedNote, TestRow
from security_tests.targets.profile import TargetProfile

SCHEMA_VERSION = "2.0"


HEADLINE_CHARS = 140


def headline(text: str, limit: int = HEADLINE_CHARS) -> str:
    """The first clause of ``text`` (up to the first "; " or " (and N more"), cut at a word within ``limit``."""
    first = text.split(" (and ", 1)[0].split("; ", 1)[0].strip()
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}…"


@dataclass(frozen=True)
class Run:
    """One test case as the report shows it, with the result ``report/status.py`` gave it."""

    nodeid: str
    outcome: str
    duration: float
    finding: str | None
    variant: Variant | None
    evidence: dict
    message: str
    context: bool
    result: RunResult
    summary: str
    """What the run measured, or why it measured nothing (a skip's typed reason)."""
    not_assessed: NotAssessedNote | None = None

    @classmethod
    def from_row(cls, row: TestRow) -> Run:
        return cls(row.nodeid, row.outcome, row.duration, row.finding, row.variant, row.evidence, row.message,
                   row.context, row.result, row.summary, row.not_assessed)

    @property
    def judges_fix(self) -> bool:
        return bool(self.variant and self.variant.judges_fix)

    @property
    def control_isolation(self) -> bool:
        return bool(self.variant and self.variant.is_control_isolation)

    @property
    def variant_id(self) -> str | None:
        return self.variant.id if self.variant else None

    def as_json(self) -> dict:
        return {"nodeid": self.nodeid, "outcome": self.outcome, "duration": self.duration, "finding": self.finding,
                "variant": self.variant_id, "variant_detail": self.variant.as_dict() if self.variant else None,
                "evidence": self.evidence, "message": self.message, "context": self.context,
                "control_isolation": self.control_isolation, "judges_fix": self.judges_fix,
                "status": self.result.label, "result_code": self.result.code, "summary": self.summary,
                "not_assessed": self.not_assessed.as_dict() if self.not_assessed else None}


@dataclass(frozen=True)
class Acceptance:
    id: str
    owner: str
    reason: str
    expires: str
    state: str = ""
    """``active``, ``expired``, ``stale`` (no longer open) or ``not run``; set when applied to a run."""

    def as_json(self) -> dict:
        return {"id": self.id, "owner": self.owner, "reason": self.reason, "expires": self.expires,
                "state": self.state}


@dataclass
class FindingResult:
    finding: WordedFinding
    status: FindingStatus
    status_meaning: str
    measured: str
    """The deciding runs' measurements (or their not-assessed reasons): always the runs behind ``status``."""
    deciding: tuple[str, ...]
    inherited: str
    runs: tuple[Run, ...]
    residual_evidence: tuple[str, ...]
    attack_run: str
    remaining_risk: str = ""
    accepted: Acceptance | None = None

    @property
    def id(self) -> str:
        return self.finding.id

    @property
    def title(self) -> str:
        return self.finding.title

    @property
    def severity_differs(self) -> bool:
        return self.finding.severity is not self.finding.id_band

    @property
    def headline(self) -> str:
        """One short measured sentence for a table cell (the summary, the PDF's executive table): the first
        clause of the broadest deciding run's words; the whole of ``measured`` is on the finding's page."""
        return headline(self.measured or self.status_meaning)

    def as_json(self) -> dict:
        return {**self.finding.as_dict(), "status": self.status.label, "status_code": self.status.code,
                "status_meaning": self.status_meaning, "attack_run": self.attack_run, "inherited": self.inherited,
                "measured": self.measured, "headline": self.headline, "measured_from": list(self.deciding),
                "residual_evidence": list(self.residual_evidence), "remaining_risk": self.remaining_risk,
                "tests": [run.as_json() for run in self.runs],
                "accepted": self.accepted.as_json() if self.accepted else None}


@dataclass(frozen=True)
class TestCount:
    total: int
    outcomes: dict[str, int]
    sentence: str


@dataclass(frozen=True)
class ThreatRow:
    stage: str
    threat: str
    example: str
    control: str
    owasp: tuple[str, ...]
    atlas: tuple[str, ...]
    findings: tuple[str, ...]
    tests: tuple[str, ...]
    status: str

    def as_json(self) -> dict:
        return {"stage": self.stage, "threat": self.threat, "example": self.example, "control": self.control,
                "owasp": list(self.owasp), "atlas": list(self.atlas), "finding_ids": list(self.findings),
                "findings": list(self.findings), "tests": list(self.tests), "status": self.status}


@dataclass(frozen=True)
class Context:
    """What was assessed: the target as the profile names it, how it was reached, what the context test saw."""

    profile: TargetProfile
    target: str
    target_name: str
    mode: str
    single_target: bool
    """Only live runs: one target, no as-acquired or control-off runs to compare with."""
    variants_run: tuple[str, ...]
    not_assessed: dict[str, list[str]]
    facts: dict
    """What the context test recorded (versions, hashes, the profile's fields, the budget plan, ...)."""
    charts: tuple[dict, ...] = ()

    @property
    def named(self) -> str:
        """The target as a sentence that names it once: "fraudpipe ... (in-process Flask test client ...)"."""
        return self.target if self.target_name in self.target else f"{self.target_name} ({self.target})"

    def as_json(self) -> dict:
        return {**self.facts, "charts": list(self.charts), "mode": self.mode, "target_name": self.target_name,
                "variants_run": list(self.variants_run), "not_assessed": self.not_assessed,
                "profile": {"name": self.profile.name, "source": self.profile.source,
                            "own_service": self.profile.own_service, "predict_path": self.profile.predict_path,
                            "fields": list(self.profile.field_names), "positive": self.profile.positive}}


@dataclass(frozen=True)
class AcceptedRisks:
    checked_on: str
    entries: tuple[Acceptance, ...] = ()

    def as_json(self) -> dict:
        return {"checked_on": self.checked_on, "entries": [e.as_json() for e in self.entries]}


@dataclass(frozen=True)
class GateResult:
    threshold: str
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class FindingChange:
    id: str
    change: str
    old_status: str | None
    new_status: str | None
    old_summary: str | None = None
    new_summary: str | None = None

    @property
    def summary_changed(self) -> bool:
        return self.old_summary is not None and self.old_summary != self.new_summary

    def as_json(self) -> dict:
        data = {"id": self.id, "change": self.change, "old_status": self.old_status, "new_status": self.new_status}
        if self.old_summary is not None:
            data.update(old_summary=self.old_summary, new_summary=self.new_summary,
                        summary_changed=self.summary_changed)
        return data


@dataclass(frozen=True)
class MeasurementChange:
    finding: str
    test: str
    measure: str
    old: float
    new: float


@dataclass(frozen=True)
class Comparison:
    previous: str
    previous_generated: str | None
    previous_code_version: str | None
    counts: dict[str, int]
    findings: tuple[FindingChange, ...]
    measurements: tuple[MeasurementChange, ...]

    def as_json(self) -> dict:
        return {"previous": self.previous, "previous_generated": self.previous_generated,
                "previous_code_version": self.previous_code_version, "counts": self.counts,
                "findings": [c.as_json() for c in self.findings],
                "measurements": [m.__dict__ for m in self.measurements]}


@dataclass
class Assessment:
    title: str
    generated: str
    code_version: str
    verdict: str
    context: Context
    environment: dict[str, str]
    count: TestCount
    findings: list[FindingResult]
    threat_map: tuple[ThreatRow, ...]
    runs: tuple[Run, ...]
    accepted_risks: AcceptedRisks
    gate: GateResult | None = None
    comparison: Comparison | None = None
    schema_version: str = SCHEMA_VERSION
    by_id: dict[str, FindingResult] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id = {f.id: f for f in self.findings}

    @property
    def status_counts(self) -> dict[FindingStatus, int]:
        """How many findings stand at each status, worst first."""
        counts: dict[FindingStatus, int] = {}
        for f in sorted(self.findings, key=lambda f: f.status):
            counts[f.status] = counts.get(f.status, 0) + 1
        return counts

    @property
    def findings_sentence(self) -> str:
        counts = self.status_counts
        return f"{sum(counts.values())} findings: " + "; ".join(f"{n} {s.label}" for s, n in counts.items())

    @property
    def legend(self) -> list[tuple[FindingStatus, str]]:
        """Every status this kind of run can give, with its meaning for this run: a single target is never
        "Verified fixed" (no before and after), a three-way run never "Held"."""
        single = self.context.single_target
        never = FindingStatus.FIXED if single else FindingStatus.HELD
        return [(s, s.meaning_on(single)) for s in FindingStatus if s is not never]

    @property
    def assessed_black_box(self) -> list[str]:
        if not self.context.single_target:
            return []
        return sorted(f.id for f in self.findings
                      if any(r.variant is not None and r.variant.live and r.outcome != "skipped" for r in f.runs))

    def as_json(self) -> dict:
        """findings.json (``docs/findings.schema.json``): this model, serialised."""
        counts = self.status_counts
        data = {
            "schema_version": self.schema_version, "title": self.title, "generated": self.generated,
            "code_version": self.code_version, "target": self.context.target,
            "target_name": self.context.target_name, "single_target": self.context.single_target,
            "verdict": self.verdict, "context": self.context.as_json(), "mode": self.context.mode,
            "variants_run": list(self.context.variants_run), "assessed_black_box": self.assessed_black_box,
            "check_by_hand": self.context.not_assessed, "environment": self.environment,
            "summary": {"finding_statuses": {s.label: n for s, n in counts.items()},
                        "finding_status_codes": {s.code: n for s, n in counts.items()},
                        "findings_sentence": self.findings_sentence, "test_outcomes": self.count.outcomes,
                        "tests": self.count.total, "tests_sentence": self.count.sentence},
            "status_legend": [{"label": s.label, "code": s.code, "meaning": meaning} for s, meaning in self.legend],
            "findings": [f.as_json() for f in self.findings],
            "threat_map": [row.as_json() for row in self.threat_map],
            "tests": [run.as_json() for run in self.runs],
            "accepted_risks": self.accepted_risks.as_json(),
        }
        if self.gate is not None:
            data["gate"] = {"threshold": self.gate.threshold, "failures": list(self.gate.failures)}
        if self.comparison is not None:
            data["comparison"] = self.comparison.as_json()
        return data
