"""The assessment as one JSON-safe dict: catalog, rows, statuses and context. findings.json is this dict;
the PDF renders it. Sorted throughout, so the output does not depend on test order or xdist scheduling."""

from __future__ import annotations

import os
import platform
from collections import Counter
import subprocess
from datetime import datetime, timezone

from security_tests.contract import Status
from security_tests.findings import FINDINGS, threat_map
from security_tests.report import plain
from security_tests.report.records import (TestRow, finding_status_counts, finding_statuses, findings_sentence,
                                           inherited_status, rows_by_finding, test_count)


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


def _measured(tests: list[dict]) -> str:
    """The one-line result a reader sees first: the hardened (or live) run's summary, else any run's."""
    ordered = sorted(tests, key=lambda t: (not t["judges_fix"], t["variant"] is not None, t["nodeid"]))
    for test in ordered:
        text = test["evidence"].get("summary") or (test["message"] if test["outcome"] == "skipped" else "")
        if text:
            return text
    return ""


def _finding_entry(item, rows: list[TestRow], status: Status, live: bool) -> dict:
    tests = [row.as_dict() for row in rows]
    live_rows = live and any(row.variant is not None and row.variant.live for row in rows)
    residual = sorted({t["evidence"]["residual"] for t in tests if t["judges_fix"] and t["evidence"].get("residual")})
    return {**item.as_dict(), "status": status.label, "status_code": status.code, "status_meaning": status.meaning,
            "attack_run": item.black_box_attack if live_rows and item.black_box_attack else item.attack,
            "inherited": inherited_status(rows), "measured": _measured(tests), "residual_evidence": residual,
            "tests": tests}


def _risk_of(f: dict) -> str:
    return "; ".join(plain.text(s) for s in f["residual_evidence"]) or plain.text(f["measured"])


def _remaining_risk(f: dict, by_id: dict) -> str:
    """What risk is left on the hardened service, in measured words, pointing at the finding that holds it."""
    if f["status_code"] == Status.CONTROL_VERIFIED_RESIDUAL.code:
        parts = [plain.text(s) for s in f["residual_evidence"]]
        parts += [f"see {r} ({by_id[r]['status']}): {_risk_of(by_id[r])}" for r in f["residual_in"] if r in by_id]
        return ". ".join(p[:1].upper() + p[1:] for p in parts)
    if f["status_code"] in (Status.RESIDUAL_RISK.code, Status.OPEN.code, Status.ERROR.code):
        return _risk_of(f)
    return ""


def _verdict(findings: list[dict], live: bool, not_assessed: dict, context: dict) -> str:
    """Live, the verdict names the target and never claims controls it could not see were verified."""
    def ids(*statuses: Status) -> list[str]:
        return [f["id"] for f in findings if f["status_code"] in {s.code for s in statuses}]

    open_ids, errors, residual_ids = ids(Status.OPEN), ids(Status.ERROR), ids(Status.RESIDUAL_RISK)
    remaining = ids(Status.CONTROL_VERIFIED_RESIDUAL)
    unreproduced = [f["id"] for f in findings if f["residual"] and f["status_code"] == Status.NOT_REPRODUCED.code]
    where = f"on {context.get('target_name', 'the live target')}" if live else "on the hardened service"
    if open_ids or errors:
        return "NOT READY: " + "; ".join(
            ([f"{len(open_ids)} finding(s) open {where} ({', '.join(open_ids)})"] if open_ids else [])
            + ([f"the assessment of {len(errors)} finding(s) errored ({', '.join(errors)})"] if errors else []))
    tail = ((f"; {len(residual_ids)} residual risk(s) remain open ({', '.join(residual_ids)})" if residual_ids else "")
            + (f"; {', '.join(remaining)}: controls verified, with risk remaining in those findings"
               if remaining else "")
            + (f"; residual risk(s) not reproduced on this target ({', '.join(unreproduced)})" if unreproduced else ""))
    if live:
        return (f"CONDITIONAL: no assessed finding open {where}; {len(not_assessed)} not assessed "
                f"({', '.join(sorted(not_assessed)) or 'none'})" + tail)
    if tail:
        return "CONDITIONAL: every control verified" + tail
    return "READY: every finding verified fixed on the hardened service"


def build_assessment(rows: list[TestRow]) -> dict:
    by_finding = rows_by_finding(rows)
    statuses = finding_statuses(rows)
    recorded = next((row.evidence for row in rows if row.context and row.evidence), {})
    context = {**recorded.get("details", {}), "charts": recorded.get("charts", [])}
    live = any(row.variant is not None and row.variant.live for row in rows)
    findings = [_finding_entry(item, by_finding[item.id], statuses[item.id], live)
                for item in sorted(FINDINGS, key=_catalog_order) if item.id in by_finding]
    covered = {f["id"]: f for f in findings}
    for f in findings:
        f["remaining_risk"] = _remaining_risk(f, covered)
    threat_rows = []
    for entry in threat_map():
        ids = [fid for fid in entry["finding_ids"] if fid in covered]
        tests = sorted(t["nodeid"] for fid in ids for t in covered[fid]["tests"])
        row_statuses = sorted({statuses[fid] for fid in ids})
        threat_rows.append({**entry, "findings": ids, "tests": tests,
                            "status": ", ".join(s.label for s in row_statuses) if row_statuses else "Not covered"})
    black_box = sorted(f["id"] for f in findings if any(t["variant_detail"] and t["variant_detail"]["live"]
                                                         and t["outcome"] != "skipped"
                                                         for t in f["tests"]))
    by_hand = {f["id"]: sorted({t["message"] for t in f["tests"] if t["outcome"] == "skipped"})
               for f in findings if f["status_code"] == Status.NOT_ASSESSED.code}
    count = test_count(rows)
    context.setdefault("mode", "black-box over HTTP" if live else "in-process, trained in this run")
    context["variants_run"] = sorted({row.variant.id for row in rows if row.variant is not None
                                      and row.outcome not in ("skipped", "unknown")})
    context["not_assessed"] = by_hand
    return {
        "title": "fraudpipe security assessment",
        "generated": report_time().isoformat(),
        "code_version": _code_version(),
        "target": _target_text(context.get("target", "in-process Flask test client")),
        "verdict": _verdict(findings, live, by_hand, context),
        "context": context,
        "mode": plain.value(context["mode"]) if context.get("mode") else
        ("live (black-box)" if live else "in-process (white-box)"),
        "variants_run": context["variants_run"],
        "assessed_black_box": black_box if live else [],
        "check_by_hand": by_hand,
        "environment": {"python": platform.python_version(), "platform": platform.platform(terse=True),
                        **context.get("versions", {})},
        "summary": {"finding_statuses": finding_status_counts(rows),
                    "finding_status_codes": dict(Counter(s.code for s in statuses.values())),
                    "findings_sentence": findings_sentence(finding_status_counts(rows)),
                    "test_outcomes": count["outcomes"], "tests": count["total"], "tests_sentence": count["sentence"]},
        "status_legend": [{"label": s.label, "code": s.code, "meaning": s.meaning} for s in Status.finding_statuses()],
        "findings": findings,
        "threat_map": threat_rows,
        "tests": [row.as_dict() for row in rows],
    }


def _target_text(target) -> str:
    """The target as the context describes it: a sentence, or labelled facts when it is structured."""
    if isinstance(target, dict):
        return target.get("description") or plain.value(target)
    return plain.text(str(target))


def _catalog_order(item) -> tuple[int, int]:
    band, number = item.id.split("-")
    return ("CRIT", "HIGH", "MED", "LOW").index(band), int(number)
