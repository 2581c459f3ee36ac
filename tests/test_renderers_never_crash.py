"""Every renderer writes a complete, valid file whatever the evidence holds: long, unicode, markup-laden,
escape-ridden and deeply nested text from a hostile target, recorded the way the plugin records it."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from security_tests.contract import LIVE, Evidence, FindingStatus, variants
from security_tests.findings import FINDINGS
from security_tests.redaction import scrub_text
from security_tests.report import records
from security_tests.report.assessment import build_assessment
from security_tests.report.compare import compare
from security_tests.report.html import evidence_html, findings_summary
from security_tests.report.pdf import write_pdf
from security_tests.report.sarif import build_sarif
from security_tests.report.summary import render_summary
from security_tests.targets.profile import fraudpipe_target
from tests.schemas import assert_valid_findings, assert_valid_sarif

HOSTILE = ["<script>alert(1)</script>", "<svg onload=alert(1)>", "\x1b[2J\x1b]0;owned\x07", "| --- |", "\ud800",
           "\u202eevil", "x" * 5000, "[a](javascript:alert(1))", "&lt;b&gt;", "\r\n\t\x00", "😀" * 50, "`", "]]>",
           "{1}", "[" * 150 + "]" * 150, "{0x1" + "0" * 256 + ":0}"]

text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=300),
                 st.lists(st.sampled_from(HOSTILE), max_size=6).map("".join))
leaf = st.one_of(text, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none())
nested = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                     st.dictionaries(text, inner, max_size=5)), max_leaves=40)


def _rows(data, live: bool) -> list[records.TestRow]:
    rows = []
    for item in FINDINGS:
        for variant in [LIVE] if live else variants(item):
            evidence = Evidence(
                attack_succeeded=data.draw(st.booleans()), summary=data.draw(text), queries=data.draw(st.integers(0, 10**6)),
                samples=[{"label": data.draw(text), "request": {"headers": {data.draw(text): data.draw(text)},
                                                                "body": data.draw(nested)},
                          "response": {"status": 200, "body": data.draw(nested)}}],
                measurements={data.draw(text): data.draw(st.one_of(st.integers(), st.floats(), st.none()))},
                details={data.draw(text): data.draw(nested), "many": list(range(data.draw(st.integers(0, 3000))))},
                residual=data.draw(text))
            outcome = data.draw(st.sampled_from(["passed", "failed", "skipped", "xfailed", "error"]))
            rows.append(records.TestRow(
                f"security_tests/test_x.py::test_{item.id}[{variant.id}]", outcome, 0.1, item.id, variant,
                records.recorded(evidence.as_dict()), message=data.draw(text),
                not_assessed=records.NotAssessedNote("target", scrub_text(data.draw(text))) if outcome == "skipped" else None))
    return rows


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
@given(data=st.data(), live=st.booleans())
def test_every_renderer_writes_a_complete_valid_file_whatever_the_evidence(data, live, tmp_path):
    assessment = build_assessment(_rows(data, live), fraudpipe_target())
    previous = assessment.as_json()
    for finding in previous["findings"]:  # an earlier run in which every finding had another status
        finding["status"] = data.draw(st.sampled_from([s.label for s in FindingStatus]))
        finding["measured"] = data.draw(text)
    assessment.comparison = compare(previous, assessment, data.draw(text))

    document = json.loads(json.dumps(assessment.as_json()))
    assert_valid_findings(document)
    assert_valid_sarif(json.loads(json.dumps(build_sarif(assessment))))
    write_pdf(assessment, tmp_path / "a.pdf")
    assert (tmp_path / "a.pdf").read_bytes().rstrip().endswith(b"%%EOF")

    page = findings_summary(assessment) + "".join(evidence_html(run.evidence, run.variant, run.result)
                                                  for run in assessment.runs)
    summary = render_summary(assessment)
    (tmp_path / "summary.md").write_text(summary, encoding="utf-8")
    for rendered in (page, summary):
        assert not re.search(r"<script>alert|<svg onload", rendered, re.I), "target markup would render"
        assert "\x1b" not in rendered and "\u202e" not in rendered


def test_a_profile_with_hundreds_of_long_feature_names_renders_every_output(tmp_path):
    """The catalog's text names the target's features: 300 of them once made a PDF table row taller than a page."""
    from security_tests.targets.profile import profile_from_dict

    names = [f"applicant_{'very_long_' * 4}feature_{i:03d}" for i in range(300)]
    features = {name: {"type": "float", "min": 0, "max": 1} for name in names}
    profile = profile_from_dict({
        "name": "wide scorer", "url": "http://127.0.0.1:9", "response": {"label": "label", "positive": "BAD"},
        "features": features, "examples": {"positive": {n: 0.1 for n in names}, "negative": {n: 0.9 for n in names}}})
    rows = [records.TestRow(f"security_tests/test_x.py::test_{item.id}[live]", "passed", 0.1, item.id, LIVE,
                            records.recorded(Evidence(False, f"tried {', '.join(names)}", 3).as_dict()))
            for item in FINDINGS]
    assessment = build_assessment(rows, profile)
    write_pdf(assessment, tmp_path / "a.pdf")
    assert_valid_sarif(json.loads(json.dumps(build_sarif(assessment))))
    assert_valid_findings(json.loads(json.dumps(assessment.as_json())))
    assert render_summary(assessment).startswith("# Security assessment of wide scorer")


def test_literals_a_target_can_write_are_rendered_in_bounded_stack():
    """Text is rewritten literal by literal: a set literal (``{1}``, whose str() is itself) rewrote itself
    until the stack ran out, and nested brackets cost stack per level; with a few hundred frames left, as
    inside pytest and hypothesis, each must still render."""
    import sys

    from security_tests.report import plain

    cases = ["risk {1}", "{'a', 'b'}", "[" * 190 + "]" * 190, "{1: " * 150 + "1" + "}" * 150,
             "[{1}, [{2: {3}}]]", "[" + repr(["[" + repr(["{4}"]) + "]"]) + "]"]

    def dive(frames: int, case: str) -> str:
        return plain.text(case) if frames <= 0 else dive(frames - 1, case)

    headroom = 250
    for case in cases:
        assert isinstance(dive(sys.getrecursionlimit() - headroom - len(_stack()), case), str), case
    assert plain.text("{1}") == "1" and plain.text("{'b', 'a'}") == "a, b"


def test_text_a_target_can_write_costs_bounded_work_and_never_raises(monkeypatch):
    """Found by a red-team pass: an integer dict key past float's range (2**1024, 263 characters of hex)
    raised OverflowError out of every renderer, and 4,000 unclosed brackets scanned 2,000 characters from
    each one (half a second a call, tens of seconds a report)."""
    from security_tests.report import plain

    assert plain.text("{0x1" + "0" * 256 + ":0}").startswith("17976931348623159")
    assert plain.value({10**400: 1}).startswith("1000") and plain.value(2**20000).endswith("bits")
    assert plain.value(1e308) == "1e+308"
    scans = []
    real = plain._literal_end
    monkeypatch.setattr(plain, "_literal_end", lambda source, start: scans.append(start) or real(source, start))
    for hostile in ("[" * 4000, "{" * 4000, '["' * 2000):
        scans.clear()
        assert plain.text(hostile)
        assert len(scans) <= plain.SCAN_BUDGET // plain.LITERAL_SPAN + 1, (hostile[:4], len(scans))


def _stack() -> list:
    import inspect

    return inspect.stack(0)
