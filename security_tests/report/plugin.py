"""Pytest hooks: evidence in, reports out.

Tests hand the ``evidence`` fixture the ``Evidence`` their attack returned. A
``pytest_runtest_makereport`` wrapper puts the finding id, the ``Variant`` and the evidence (as JSON
strings, so nothing numpy-typed crosses to the xdist controller) into ``report.user_properties``. The
controller collects rows in ``pytest_runtest_logreport`` (every test in the security_tests package is an
assessment test case, with or without a finding), writes findings.json and the PDF in
``pytest_sessionfinish`` whatever the outcome, and prints the one test count and the finding statuses.
Only the ``--fail-on`` gate (``ci.py``) sets the exit status, and only when every test passed. The
pytest-html hooks put the findings summary above the table and each run's evidence inline in its row
(``security_tests/report/html.py``).
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import pytest

from security_tests.contract import Evidence, Variant
from security_tests.report import ci
from security_tests.report.records import TestRow, jsonable

EVIDENCE_KEY = pytest.StashKey["Recorder"]()
MARKERS = ("finding(id): the catalog finding a security test measures",
           "assessment_context: records the target and model under assessment for the report",
           "white_box(reason): needs the service's inside; skipped against a live URL",
           "slow: heavier attacks (ART); CI runs them too",
           "black_box: runs only against a live target, from its profile (budgeted queries)")


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
    if marker is None and not context and not _in_assessment(item):
        return report
    report.user_properties.append(("finding", marker.args[0] if marker else None))
    report.user_properties.append(("variant", _variant(item)))
    report.user_properties.append(("context", context))
    if report.when == "call" and recorder is not None and recorder.recorded is not None:
        safe = jsonable(recorder.recorded.as_dict())
        report.user_properties.append(("evidence", json.dumps(safe, sort_keys=True)))
    return report


def _in_assessment(item) -> bool:
    """A test in the security_tests package counts as an assessment test case even without a finding."""
    module = getattr(item, "module", None)
    return bool(module and module.__name__.startswith("security_tests."))


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
        self._assessment: dict | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if "finding" not in props:
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
        out = Path(self.config.getoption("assessment_dir"))
        if not out.is_absolute():
            out = Path(self.config.rootpath) / out
        out.mkdir(parents=True, exist_ok=True)
        assessment = self.assessment()
        (out / "findings.json").write_text(json.dumps(assessment, indent=2, sort_keys=True) + "\n")
        written = [out / "findings.json"]
        if not self.config.getoption("no_assessment_pdf"):
            from security_tests.report.pdf import write_pdf

            write_pdf(assessment, out / "security-assessment.pdf")
            written.append(out / "security-assessment.pdf")
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            summary = assessment["summary"]
            reporter.write_sep("-", f"security assessment: {summary['tests_sentence']}")
            reporter.write_line(summary["findings_sentence"])
            reporter.write_line("written: " + ", ".join(str(p) for p in written))
        ci.finish(self.config, session, assessment, reporter)

    def assessment(self) -> dict:
        """Built once from the rows, after the last test: the HTML summary and the files share it."""
        if self._assessment is None:
            from security_tests.report.assessment import build_assessment

            self._assessment = ci.enrich(self.config, build_assessment(sorted(self.rows.values(),
                                                                              key=lambda r: r.nodeid)))
        return self._assessment

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report) -> None:
        report.title = "fraudpipe security assessment"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix, summary, postfix) -> None:
        if any(row.finding for row in self.rows.values()):
            from security_tests.report.html import findings_summary

            prefix.append(findings_summary(self.assessment()))
            prefix.extend(ci.html_summary_lines(self.config))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells) -> None:
        cells.insert(1, '<th class="sortable" data-column-type="order">#</th>')
        cells.insert(2, '<th class="sortable" data-column-type="finding">Finding</th>')
        cells.insert(3, '<th>What the run showed</th>')
        cells.insert(4, '<th class="sortable" data-column-type="profile">Service</th>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report, cells) -> None:
        from security_tests.report import plain
        from security_tests.report.html import sort_key

        props = dict(getattr(report, "user_properties", ()))
        variant = props.get("variant")
        if "finding" not in props:
            kind, shown = "unit test", ""
        else:
            kind = props["finding"] or ("assessment context" if props.get("context") else "property check")
            test = {"variant_detail": variant, "outcome": _outcome(report), "evidence": {}, "nodeid": "", "message": ""}
            shown = plain.run_result(test)
        key = sort_key(props.get("finding"), variant, kind)
        cells.insert(1, f'<td class="col-order"><span hidden>{key}</span></td>')
        cells.insert(2, f'<td class="col-finding">{escape(kind)}</td>')
        cells.insert(3, f'<td class="col-shown">{escape(shown)}</td>')
        cells.insert(4, f'<td class="col-profile">{escape(plain.variant_name(variant) if variant else "")}</td>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report, data) -> None:
        """The run's evidence replaces the log; a real failure keeps its traceback below the evidence."""
        props = dict(getattr(report, "user_properties", ()))
        if "evidence" not in props:
            return
        from security_tests.report.html import evidence_html

        outcome = _outcome(report)
        html = evidence_html(json.loads(props["evidence"]), props.get("variant"), outcome)
        data[:] = [html] + (data if outcome in ("failed", "error") else [])


def _outcome(report) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


def _last_line(report) -> str:
    text = (report.longreprtext or "").strip() if report.failed else ""
    return text.splitlines()[-1][:400] if text else ""
