"""Pytest hooks: evidence in, reports out.

Tests hand the ``evidence`` fixture the ``Evidence`` their attack returned. A
``pytest_runtest_makereport`` wrapper puts the finding id, the ``Variant`` and the evidence (as JSON
strings, so nothing numpy-typed crosses to the xdist controller) into ``report.user_properties`` and adds pytest-html extras. The controller collects rows
in ``pytest_runtest_logreport`` and writes findings.json and the PDF in ``pytest_sessionfinish``,
whatever the outcome. Only the ``--fail-on`` gate (``ci.py``) sets the exit status, and only when
every test passed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from security_tests.contract import Evidence, Variant
from security_tests.report import ci
from security_tests.report.records import TestRow, jsonable

EVIDENCE_KEY = pytest.StashKey["Recorder"]()
MARKERS = ("finding(id): the catalog finding a security test measures",
           "assessment_context: records the target and model under assessment for the report",
           "white_box(reason): needs the service's inside; skipped against a live URL",
           "slow: heavier attacks (ART); CI runs them too")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fraudpipe assessment")
    group.addoption("--assessment-dir", default="artifacts",
                    help="where findings.json and security-assessment.pdf are written (default: artifacts)")
    group.addoption("--no-assessment-pdf", action="store_true", help="write findings.json only")
    ci.add_options(group)


def pytest_configure(config: pytest.Config) -> None:
    ci.load_inputs(config)
    config.pluginmanager.register(Collector(config), "fraudpipe-assessment-collector")
    for line in MARKERS:
        config.addinivalue_line("markers", line)


class Recorder:
    """Holds the one ``Evidence`` a test measured; the same record reaches the HTML page and the PDF."""

    def __init__(self) -> None:
        self.recorded: Evidence | None = None

    def record(self, evidence: Evidence) -> Evidence:
        self.recorded = evidence
        return evidence


@pytest.fixture
def evidence(request) -> Recorder:
    recorder = Recorder()
    request.node.stash[EVIDENCE_KEY] = recorder
    return recorder


def _variant(item) -> dict | None:
    callspec = getattr(item, "callspec", None)
    variant = callspec.params.get("variant") if callspec else None
    return variant.as_dict() if isinstance(variant, Variant) else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    marker = item.get_closest_marker("finding")
    context = item.get_closest_marker("assessment_context") is not None
    recorder = item.stash.get(EVIDENCE_KEY, None)
    if marker is None and not context:
        return report
    report.user_properties.append(("finding", marker.args[0] if marker else None))
    report.user_properties.append(("variant", _variant(item)))
    report.user_properties.append(("context", context))
    if report.when == "call" and recorder is not None and recorder.recorded is not None:
        safe = jsonable(recorder.recorded.as_dict())
        report.user_properties.append(("evidence", json.dumps(safe, sort_keys=True)))
        _html_extras(item, report, safe)
    return report


def _html_extras(item, report, safe: dict) -> None:
    html = item.config.pluginmanager.getplugin("html")
    if html is None:
        return
    from security_tests.report.charts import render_charts

    extras = list(getattr(report, "extras", []))
    extras.append(html.extras.json({k: v for k, v in safe.items() if k != "charts"}, name="evidence"))
    for title, png in render_charts(safe.get("charts", [])):
        extras.append(html.extras.png(base64.b64encode(png).decode(), name=title))
    report.extras = extras


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


class Collector:
    """Lives on the controller (and, idle, on each xdist worker); holds one row per assessed test."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: dict[str, TestRow] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if "finding" not in props and not props.get("context"):
            return
        variant = props.get("variant")
        row = self.rows.setdefault(report.nodeid, TestRow(
            report.nodeid, finding=props.get("finding"), variant=Variant.from_dict(variant) if variant else None,
            context=bool(props.get("context"))))
        row.duration += report.duration
        if "evidence" in props:
            row.evidence = json.loads(props["evidence"])
        if report.when == "setup" and report.failed:
            row.outcome = "error"
            row.message = _last_line(report)
        elif report.when == "setup" and report.skipped:
            row.outcome = "skipped"
            row.message = _skip_reason(report)
        elif report.when == "call":
            if hasattr(report, "wasxfail"):
                row.outcome = "xfailed" if report.skipped else "xpassed"
                row.message = report.wasxfail
            else:
                row.outcome = report.outcome
                row.message = _skip_reason(report) if report.skipped else _last_line(report)
        elif report.when == "teardown" and report.failed and row.outcome == "passed":
            row.outcome = "error"
        if report.when == "teardown" and not hasattr(self.config, "workerinput"):
            report.user_properties.extend(ci.case_properties(row.finding, row.status))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            return
        rows = sorted(self.rows.values(), key=lambda r: r.nodeid)
        if not any(row.finding for row in rows):
            return
        from security_tests.report.assessment import build_assessment

        out = Path(self.config.getoption("assessment_dir"))
        if not out.is_absolute():
            out = Path(self.config.rootpath) / out
        out.mkdir(parents=True, exist_ok=True)
        assessment = ci.enrich(self.config, build_assessment(rows))
        (out / "findings.json").write_text(json.dumps(assessment, indent=2, sort_keys=True) + "\n")
        written = [out / "findings.json"]
        if not self.config.getoption("no_assessment_pdf"):
            from security_tests.report.pdf import write_pdf

            write_pdf(assessment, out / "security-assessment.pdf")
            written.append(out / "security-assessment.pdf")
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            counts = assessment["summary"]["finding_statuses"]
            reporter.write_sep("-", "assessment: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
            reporter.write_line("written: " + ", ".join(str(p) for p in written))
        ci.finish(self.config, session, assessment, reporter)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report) -> None:
        report.title = "fraudpipe security assessment"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix, summary, postfix) -> None:
        from security_tests.report.records import finding_status_counts

        counts = finding_status_counts(self.rows.values())
        if counts:
            text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            prefix.append(f"<p><strong>Findings ({sum(counts.values())}):</strong> {text}</p>")
        prefix.extend(ci.html_summary_lines(self.config))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells) -> None:
        cells.insert(2, '<th class="sortable" data-column-type="finding">Finding</th>')
        cells.insert(3, '<th class="sortable" data-column-type="severity">Severity</th>')
        cells.insert(4, '<th class="sortable" data-column-type="profile">Profile</th>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report, cells) -> None:
        from security_tests.findings import BY_ID

        props = dict(getattr(report, "user_properties", ()))
        found = BY_ID.get(props.get("finding") or "")
        severity = f"{found.severity.label} {found.cvss_score}" if found else ""
        cells.insert(2, f'<td class="col-finding">{found.id if found else ""}</td>')
        cells.insert(3, f'<td class="col-severity">{severity}</td>')
        cells.insert(4, f'<td class="col-profile">{(props.get("variant") or {}).get("id", "")}</td>')


def _last_line(report) -> str:
    text = (report.longreprtext or "").strip() if report.failed else ""
    return text.splitlines()[-1][:400] if text else ""
