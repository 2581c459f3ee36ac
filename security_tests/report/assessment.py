"""Rows in, one ``Assessment`` out: statuses decided once (``report/status.py``), text worded for the target
assessed (``Finding.worded``), everything sorted so the output does not depend on test order or xdist."""

from __future__ import annotations

import os
import platform
import subprocess
from collections import Counter
from datetime import datetime, timezone

from security_tests.contract import FindingStatus, RunResult
from security_tests.findings import FINDINGS, threat_map
from security_tests.report import plain
from security_tests.report.model import (AcceptedRisks, Assessment, Context, FindingResult, Run, TestCount,
                                         ThreatRow)
from security_tests.report.records import NOT_ASSESSED_WORDS, OUTCOME_WORDS, TestRow, rows_by_finding
from security_tests.report.status import judge, lift
from security_tests.targets.profile import TargetProfile, fraudpipe_target


def _code_version() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def report_time() -> datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    return datetime.now(timezone.utc).replace(microsecond=0)


def count_tests(rows: list[TestRow]) -> TestCount:
    """The one count of assessment test cases, with what it counts, for every output."""
    outcomes = Counter(row.outcome for row in rows)
    parts = [f"{outcomes[o]} {words[outcomes[o] != 1]}" for o, words in OUTCOME_WORDS.items() if outcomes[o]]
    total = sum(outcomes.values())
    return TestCount(total, dict(sorted(outcomes.items())), f"{total} assessment test cases: " + ", ".join(parts))


def _measured(deciding: list[Run]) -> str:
    """The deciding runs' own words: the broadest one's (most requests sent), and how many more runs gave the
    same status."""
    broadest = sorted(deciding, key=lambda run: -int((run.evidence or {}).get("queries") or 0))
    texts = list(dict.fromkeys(run.summary for run in broadest if run.summary))
    if len(texts) <= 1:
        return "".join(texts)
    return f"{texts[0]} (and {len(texts) - 1} more run(s) with this status, in the evidence)"


def title(profile: TargetProfile) -> str:
    return f"Security assessment of {profile.name}"


def _remaining_risk(f: FindingResult, by_id: dict[str, FindingResult]) -> str:
    """What risk is left on the hardened service, in measured words, pointing at the finding that holds it."""
    def risk_of(other: FindingResult) -> str:
        return "; ".join(plain.text(s) for s in other.residual_evidence) or plain.text(other.measured)

    if f.status is FindingStatus.CONTROL_VERIFIED_RESIDUAL:
        parts = [plain.text(s) for s in f.residual_evidence]
        parts += [f"see {r} ({by_id[r].status.label}): {risk_of(by_id[r])}" for r in f.finding.residual_in
                  if r in by_id]
        return ". ".join(p[:1].upper() + p[1:] for p in parts)
    if f.status in (FindingStatus.RESIDUAL_RISK, FindingStatus.OPEN, FindingStatus.ERROR):
        return risk_of(f)
    return ""


UNMEASURED_ORDER = ("target", "budget", "precondition", "inconclusive", "needs_inside", "skipped")
"""The reason a finding's verdict line gives when its runs were not measured for several: the most telling."""


def unmeasured(findings: list[FindingResult]) -> str:
    """Every finding this run did not measure, grouped by why: "3 not measured (CRIT-2, HIGH-1: the target
    broke the assessor's rules; MED-2: needs the inside)"; empty when every finding was measured."""
    by_reason: dict[str, list[str]] = {}
    for f in findings:
        if f.status in (FindingStatus.NOT_ASSESSED, FindingStatus.NOT_RUN):
            kinds = {r.not_assessed.kind for r in f.runs if r.not_assessed is not None}
            telling = next((k for k in UNMEASURED_ORDER if k in kinds), None)
            reason = (NOT_ASSESSED_WORDS.get(telling, telling) if telling else
                      "no test ran" if f.status is FindingStatus.NOT_RUN else "not measured")
            by_reason.setdefault(reason, []).append(f.id)
    if not by_reason:
        return ""
    count = sum(len(ids) for ids in by_reason.values())
    return f"{count} not measured (" + "; ".join(f"{', '.join(ids)}: {why}" for why, ids in by_reason.items()) + ")"


def _and(ids: list[str]) -> str:
    return ids[0] if len(ids) == 1 else f"{', '.join(ids[:-1])} and {ids[-1]}"


def _verdict(findings: list[FindingResult], context: Context) -> str:
    """The verdict in one sentence that names its condition ("CONDITIONAL on accepting HIGH-3 and HIGH-4:
    …"). Against a single target it names the target and never claims controls it could not see were
    verified; every finding the run did not measure is counted and named, whatever the verdict."""
    def ids(*statuses: FindingStatus) -> list[str]:
        return [f.id for f in findings if f.status in statuses]

    open_ids, errors, residual_ids = ids(FindingStatus.OPEN), ids(FindingStatus.ERROR), ids(FindingStatus.RESIDUAL_RISK)
    remaining = ids(FindingStatus.CONTROL_VERIFIED_RESIDUAL)
    unreproduced = [f.id for f in findings if f.finding.residual and f.status is FindingStatus.NOT_REPRODUCED]
    missing = unmeasured(findings)
    where = f"on {context.target_name}" if context.single_target else "on the hardened service"
    if open_ids or errors:
        return "NOT READY: " + "; ".join(
            ([f"{len(open_ids)} finding(s) open {where} ({', '.join(open_ids)})"] if open_ids else [])
            + ([f"the assessment of {len(errors)} finding(s) errored ({', '.join(errors)})"] if errors else [])
            + ([missing] if missing else []))
    conditions = ([f"accepting {_and(residual_ids)} (risk no control removes, measured open)"] if residual_ids else [])
    own_risk = [fid for fid in remaining if not any(r in residual_ids for r in next(
        f.finding.residual_in for f in findings if f.id == fid))]
    conditions += [f"accepting the risk measured in {_and(own_risk)}"] if own_risk else []
    conditions += [f"checking by hand the {missing.split(' ', 1)[0]} finding(s) not measured"] if missing else []
    verified = "controls hold" if context.single_target else "controls verified"
    details = ([f"no assessed finding open {where}" if context.single_target or missing else "every control verified"]
               + ([missing] if missing else [])
               + ([f"{', '.join(remaining)}: {verified}, with risk remaining in those findings"] if remaining else [])
               + ([f"residual risk(s) not reproduced on this target ({', '.join(unreproduced)})"] if unreproduced else []))
    if conditions:
        return f"CONDITIONAL on {' and '.join(conditions)}: " + "; ".join(details)
    if context.single_target:
        return f"READY on {context.target_name}: every finding measured and held" + "".join(f"; {d}" for d in details[1:])
    return "READY: every finding verified fixed on the hardened service"


def _context(rows: list[TestRow], profile: TargetProfile, judged: dict[str, FindingResult]) -> Context:
    recorded = next((row.evidence for row in rows if row.context and row.evidence), {})
    facts = {k: v for k, v in recorded.get("details", {}).items() if k not in ("mode", "target_name")}
    single = any(row.variant is not None and row.variant.live for row in rows)
    details = recorded.get("details", {})
    target = details.get("target", f"{profile.name}, in-process test client" if not single else profile.name)
    return Context(
        profile=profile, target=target.get("description") or plain.value(target) if isinstance(target, dict) else plain.text(str(target)),
        target_name=profile.name,
        mode=plain.value(details["mode"]) if details.get("mode") else
        ("black-box over HTTP" if single else "in-process, trained in this run"),
        single_target=single,
        variants_run=tuple(sorted({row.variant.id for row in rows if row.variant is not None
                                   and row.outcome not in ("skipped", "unknown")})),
        not_assessed={fid: sorted({r.summary for r in f.runs if r.result is RunResult.NOT_ASSESSED})
                      for fid, f in judged.items() if f.status is FindingStatus.NOT_ASSESSED},
        facts=facts, charts=tuple(recorded.get("charts", [])))


def build_assessment(rows: list[TestRow], profile: TargetProfile | None = None) -> Assessment:
    """The model of this run against ``profile`` (default: fraudpipe itself, the in-process target)."""
    profile = profile or fraudpipe_target()
    rows = sorted(rows, key=lambda r: r.nodeid)
    single = any(row.variant is not None and row.variant.live for row in rows)
    grouped = rows_by_finding(rows)
    judgements = {fid: judge(group, single) for fid, group in grouped.items()}
    residual_in = {item.id: item.residual_in for item in FINDINGS}
    statuses = lift({fid: j.status for fid, j in judgements.items()}, residual_in)
    findings: list[FindingResult] = []
    for item in sorted(FINDINGS, key=_catalog_order):
        if item.id not in grouped:
            continue
        runs = tuple(Run.from_row(row) for row in grouped[item.id])
        deciding_ids = {row.nodeid for row in judgements[item.id].deciding}
        deciding = [run for run in runs if run.nodeid in deciding_ids]
        status = statuses[item.id]
        worded = item.worded(profile)
        live_runs = single and any(run.variant is not None and run.variant.live for run in runs)
        findings.append(FindingResult(
            finding=worded, status=status, status_meaning=status.meaning_on(single),
            measured=_measured(deciding), deciding=tuple(sorted(deciding_ids)),
            inherited=", ".join(sorted({run.result.label for run in runs
                                        if run.variant is not None and run.variant.is_baseline})) or "n/a",
            runs=runs,
            residual_evidence=tuple(sorted({str(run.evidence["residual"]) for run in runs
                                            if run.judges_fix and run.evidence.get("residual")})),
            attack_run=worded.black_box_attack if live_runs and worded.black_box_attack else worded.attack))
    by_id = {f.id: f for f in findings}
    for f in findings:
        f.remaining_risk = _remaining_risk(f, by_id)
    context = _context(rows, profile, by_id)
    threat_rows = []
    for entry in threat_map(profile=profile):
        ids = tuple(fid for fid in entry["finding_ids"] if fid in by_id)
        row_statuses = sorted({by_id[fid].status for fid in ids})
        threat_rows.append(ThreatRow(
            entry["stage"], entry["threat"], entry["example"], entry["control"], tuple(entry["owasp"]),
            tuple(entry["atlas"]), ids, tuple(sorted(run.nodeid for fid in ids for run in by_id[fid].runs)),
            ", ".join(s.label for s in row_statuses) if row_statuses else "Not covered"))
    from security_tests.report.accepted_risks import today

    return Assessment(
        title=title(profile), generated=report_time().isoformat(),
        code_version=_code_version(), verdict=_verdict(findings, context), context=context,
        environment={"python": platform.python_version(), "platform": platform.platform(terse=True),
                     **{k: str(v) for k, v in context.facts.get("versions", {}).items()}},
        count=count_tests(rows), findings=findings, threat_map=tuple(threat_rows),
        runs=tuple(Run.from_row(row) for row in rows), accepted_risks=AcceptedRisks(today().isoformat()))


def _catalog_order(item) -> tuple[int, int]:
    band, number = item.id.split("-")
    return ("CRIT", "HIGH", "MED", "LOW").index(band), int(number)
