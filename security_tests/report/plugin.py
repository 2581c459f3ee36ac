"""Pytest hooks: evidence in, reports out.

Tests hand the ``evidence`` fixture the ``Evidence`` their attack returned. A
``pytest_runtest_makereport`` wrapper puts the finding id, the ``Variant``, the evidence (as JSON strings,
so nothing numpy-typed crosses to the xdist controller) and, for a run that measured nothing, why
(``NotAssessed`` kinds) into ``report.user_properties``. The controller collects rows in
``pytest_runtest_logreport`` (every test in the security_tests package is an assessment test case, with
or without a finding), builds the one ``Assessment`` model in ``pytest_sessionfinish`` whatever the
outcome, writes findings.json and the PDF from it, and prints the one test count and the finding
statuses. Only the ``--fail-on`` gate (``ci.py``) sets the exit status, and only when every test passed.
The pytest-html hooks put the findings summary above the table and each run's evidence inline in its row.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import pytest

from security_tests import markers
from security_tests.contract import Evidence, NotAssessed, Variant
from security_tests.report import ci
from security_tests.redaction import inert, register_secret, scrub_text
from security_tests.report.records import NotAssessedNote, TestRow, recorded

EVIDENCE_KEY = pytest.StashKey["Recorder"]()
NOT_ASSESSED_KEY = pytest.StashKey[NotAssessedNote]()


def pytest_addoption(parser: pytest.Parser) -> None:
    report = parser.getgroup("assessment report")
    report.addoption("--assessment-dir", default="artifacts",
                     help="where findings.json and security-assessment.pdf are written (default: artifacts)")
    report.addoption("--no-assessment-pdf", action="store_true", help="write findings.json only")
    ci.add_options(parser.getgroup("assessment in CI"))


def pytest_configure(config: pytest.Config) -> None:
    for key in config.getoption("api_key", default=None) or []:
        register_secret(key)
    ci.load_inputs(config)
    config.pluginmanager.register(Collector(config), "assessment-report-collector")
    markers.register(config)


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


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """A ``NotAssessed`` raised anywhere in a test (or turned into a skip by ``live.measure``) makes the test
    a skip whose kind and reason the report shows: nothing measured is never a verdict. A skip inside a
    strict-xfail test stays a skip."""
    try:
        return (yield)
    except NotAssessed as exc:
        pyfuncitem.stash[NOT_ASSESSED_KEY] = NotAssessedNote(exc.kind, scrub_text(str(exc)))
        pytest.skip(scrub_text(str(exc)))
    except pytest.skip.Exception as exc:
        cause = exc.__context__
        if isinstance(cause, NotAssessed):
            pyfuncitem.stash[NOT_ASSESSED_KEY] = NotAssessedNote(cause.kind, scrub_text(str(cause)))
        raise


def _variant(item) -> dict | None:
    callspec = getattr(item, "callspec", None)
    variant = callspec.params.get("variant") if callspec else None
    return variant.as_dict() if isinstance(variant, Variant) else None


def _live(item) -> bool:
    from security_tests.target import live_target

    variant = _variant(item)
    return live_target(item.config) is not None or bool(variant and variant["live"])


def _skip_note(item, report) -> NotAssessedNote | None:
    """Why a skipped test measured nothing: its ``NotAssessed`` kind, ``needs_inside`` for a white-box test
    against a live target, else a plain skip."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    note = item.stash.get(NOT_ASSESSED_KEY, None)
    if note is not None:
        return note
    white_box = markers.white_box_reason(item)
    if white_box is not None and _live(item):
        return NotAssessedNote("needs_inside", white_box)
    return NotAssessedNote("skipped", _skip_reason(report))


def _scrub_report(report: pytest.TestReport) -> None:
    """What pytest itself prints and writes (console, JUnit XML, the HTML log) from this report carries no
    key and no terminal control: a failure's text, a skip's reason, captured output."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        report.longrepr = (longrepr[0], longrepr[1], scrub_text(str(longrepr[2]), None))
    elif longrepr is not None:
        text = str(longrepr)
        clean = scrub_text(text, None)
        if clean != text:
            report.longrepr = clean
    report.sections = [(title, scrub_text(content, None)) for title, content in report.sections]
    if hasattr(report, "wasxfail"):
        report.wasxfail = scrub_text(report.wasxfail, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _scrub_report(report)
    finding = markers.finding_of(item)
    context = markers.is_context(item)
    if finding is None and not context and not _in_assessment(item):
        return report
    report.user_properties.append(("finding", finding))
    report.user_properties.append(("variant", _variant(item)))
    report.user_properties.append(("context", context))
    note = _skip_note(item, report)
    if note is not None:
        report.user_properties.append(("not_assessed", note.as_dict()))
    if report.when == "call" and report.failed and call.excinfo is None:
        report.user_properties.append(("strict_xpass", True))
    recorder = item.stash.get(EVIDENCE_KEY, None)
    if report.when == "call" and recorder is not None and recorder.recorded is not None:
        safe = recorded(recorder.recorded.as_dict())
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


def _outcome(report) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


def _last_line(report) -> str:
    text = (report.longreprtext or "").strip() if report.failed else ""
    return text.splitlines()[-1][:400] if text else ""


def _profile(config: pytest.Config):
    """The target assessed: the live target's profile, or fraudpipe's own for in-process runs."""
    from security_tests.target import live_target
    from security_tests.targets.profile import fraudpipe_target

    target = live_target(config)
    return target.profile if target is not None else fraudpipe_target()


class Collector:
    """Lives on the controller (and, idle, on each xdist worker); holds one row per assessed test."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: dict[str, TestRow] = {}
        self._assessment = None

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
        if "not_assessed" in props and report.when in ("setup", "call"):
            row.not_assessed = NotAssessedNote(**props["not_assessed"])
        if report.when == "setup" and report.failed:
            row.outcome = "error"
            row.message = _last_line(report)
        elif report.when == "setup" and report.skipped:
            row.outcome = "skipped"
            row.message = _skip_reason(report)
        elif report.when == "call":
            row.outcome = _outcome(report)
            row.strict_xpass = bool(props.get("strict_xpass"))
            if hasattr(report, "wasxfail"):
                row.message = report.wasxfail
            else:
                row.message = _skip_reason(report) if report.skipped else _last_line(report)
        elif report.when == "teardown" and report.failed and row.outcome == "passed":
            row.outcome = "error"
        if report.when == "teardown" and not hasattr(self.config, "workerinput"):
            report.user_properties.extend(ci.case_properties(row.finding, row.result.label))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput") or not any(row.finding for row in self.rows.values()):
            return
        out = Path(self.config.getoption("assessment_dir"))
        if not out.is_absolute():
            out = Path(self.config.rootpath) / out
        out.mkdir(parents=True, exist_ok=True)
        assessment = self.assessment()
        (out / "findings.json").write_text(json.dumps(assessment.as_json(), indent=2, sort_keys=True) + "\n")
        written = [out / "findings.json"]
        if not self.config.getoption("no_assessment_pdf"):
            from security_tests.report.pdf import write_pdf

            write_pdf(assessment, out / "security-assessment.pdf")
            written.append(out / "security-assessment.pdf")
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("-", inert(f"{assessment.title}: {assessment.count.sentence}"))
            reporter.write_line(inert(assessment.findings_sentence))
            reporter.write_line(inert("written: " + ", ".join(str(p) for p in written)))
        ci.finish(self.config, session, assessment, reporter)

    def assessment(self):
        """Built once from the rows, after the last test: the HTML summary and the files share it."""
        if self._assessment is None:
            from security_tests.report.assessment import build_assessment

            self._assessment = ci.add_ci_results(self.config, build_assessment(list(self.rows.values()),
                                                                               _profile(self.config)))
        return self._assessment

    def _assessed(self) -> bool:
        return any(row.finding for row in self.rows.values())

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report) -> None:
        """Asked before any test ran: the title comes from the profile, as the assessment's own does."""
        from security_tests.report.assessment import title

        report.title = title(_profile(self.config))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix, summary, postfix) -> None:
        if self._assessed():
            from security_tests.report.html import findings_summary

            assessment = self.assessment()
            prefix.append(findings_summary(assessment))
            prefix.extend(ci.html_summary_lines(assessment))

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
        row = self.rows.get(report.nodeid)
        variant = row.variant if row is not None else None
        if "finding" not in props or row is None:
            kind, shown = "unit test", ""
        else:
            kind = row.finding or ("assessment context" if row.context else "property check")
            shown = row.result.words
        key = sort_key(props.get("finding"), variant, kind)
        cells.insert(1, f'<td class="col-order"><span hidden>{key}</span></td>')
        cells.insert(2, f'<td class="col-finding">{escape(kind)}</td>')
        cells.insert(3, f'<td class="col-shown">{escape(shown)}</td>')
        cells.insert(4, f'<td class="col-profile">{escape(plain.variant_name(variant) if variant else "")}</td>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report, data) -> None:
        """The run's evidence replaces the log; a real failure keeps its traceback below the evidence."""
        row = self.rows.get(report.nodeid)
        if row is None or not row.evidence:
            return
        from security_tests.report.html import evidence_html

        html = evidence_html(row.evidence, row.variant, row.result)
        data[:] = [html] + (data if row.outcome in ("failed", "error") and not row.strict_xpass else [])
