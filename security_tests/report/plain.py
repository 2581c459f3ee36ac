"""Evidence as a reader without Python sees it: labelled values with units, prose instead of reprs.

Attacks write their summaries for engineers and their details as raw data; the PDF and the HTML page
both pass them through here, so neither shows ``{'amount': 10}``, ``True`` or ``0o600``.
"""

from __future__ import annotations

import ast
import json
import re

from typing import TYPE_CHECKING

from security_tests.contract import Variant

if TYPE_CHECKING:
    from security_tests.report.model import Acceptance, Comparison, FindingResult, Run

PERCENT_WORDS = ("fidelity", "rate", "share", "recall", "precision", "accuracy", "agreement")
_BOOL = re.compile(r"\b(True|False|None)\b")
_OCTAL = re.compile(r"\b0o([0-7]{3,4})\b")


NESTING = 20
"""Levels of literals (and literals quoted inside their strings) rewritten as words; deeper ones are shown
as written. A target's text can nest them without end, and each level costs the renderer stack frames."""


def value(item, key: str = "", *, depth: int = 0) -> str:
    """One value in words: percentages for rates in [0, 1], thousands separators, yes/no, a dash for none."""
    if depth > NESTING:
        return str(item)
    if item is None:
        return "—"
    if isinstance(item, bool):
        return "yes" if item else "no"
    if isinstance(item, int):
        try:
            return f"{item:,}"
        except ValueError:  # past Python's limit on digits converted to text
            return f"an integer of {item.bit_length():,} bits"
    if isinstance(item, float):
        if set(re.split(r"[_\s]+", key.lower())) & set(PERCENT_WORDS) and 0 <= item <= 1:
            return f"{item:.1%}"
        return f"{item:,.0f}" if 1e6 <= abs(item) < 1e15 else f"{item:,.4g}"  # 1e308 is not 309 digits
    if isinstance(item, dict):
        ordered = sorted(item.items(), key=lambda kv: (0, float(kv[0])) if _number(kv[0]) else (1, str(kv[0])))
        return "; ".join(f"{label(k)}: {value(v, key if _number(k) else str(k), depth=depth + 1)}"
                         for k, v in ordered) or "none"
    if isinstance(item, (set, frozenset)):  # ``{1}`` in a target's text: its str() is the same literal again
        item = sorted(item, key=repr)
    if isinstance(item, (list, tuple)):
        return ", ".join(value(v, key, depth=depth + 1) for v in item) or "none"
    return text(str(item), depth=depth + 1)


def _number(key) -> bool:
    try:
        float(key)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer key past float's range
        return False
    return True


ACRONYMS = {"auc": "AUC", "roc": "ROC", "pr": "PR", "api": "API", "pii": "PII", "sha256": "SHA-256", "http": "HTTP"}


def label(key) -> str:
    words = " ".join(ACRONYMS.get(w.lower(), w) for w in str(key).replace("_", " ").split())
    return words[:1].upper() + words[1:]


LITERAL_SPAN = 2000
"""Characters a rewritten literal may span."""
SCAN_BUDGET = 10 * LITERAL_SPAN
"""Characters ``text`` may scan looking for literals' ends, in all: a target's text of unclosed brackets
would otherwise cost its length times ``LITERAL_SPAN`` (4,000 ``[`` took half a second a call)."""


def _literal_end(source: str, start: int) -> int:
    """Index after the bracket that closes the one at ``start``; -1 when unbalanced (or too far away)."""
    pairs, depth, quote = {"{": "}", "[": "]"}, 0, ""
    opener = source[start]
    for index in range(start, min(len(source), start + LITERAL_SPAN)):
        char = source[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == opener:
            depth += 1
        elif char == pairs[opener]:
            depth -= 1
            if depth == 0:
                return index + 1
    return -1


def text(source: str, *, depth: int = 0) -> str:
    """A sentence with any embedded Python literal rewritten as words."""
    out, index, budget = [], 0, SCAN_BUDGET
    while index < len(source):
        char = source[index]
        end = -1
        if char in "{[" and depth <= NESTING and budget > 0:
            end = _literal_end(source, index)
            budget -= (end if end > 0 else min(len(source), index + LITERAL_SPAN)) - index
        if end > 0:
            try:
                out.append(value(ast.literal_eval(source[index:end]), depth=depth + 1))
                index = end
                continue
            except Exception:  # noqa: BLE001 - words are a courtesy: text that will not convert is kept as written
                pass
        out.append(char)
        index += 1
    words = _OCTAL.sub(r"0\1", "".join(out))
    return _BOOL.sub(lambda m: {"True": "yes", "False": "no", "None": "none"}[m.group(1)], words)


def variant_name(variant: Variant | None) -> str:
    """A run's name for a reader: as acquired, hardened, or hardened with one control off."""
    if variant is None:
        return "Check"
    if variant.live:
        return "Live target"
    if variant.is_baseline:
        return "As acquired (inherited)"
    return f"Hardened, {variant.isolates} off" if variant.isolates else "Hardened"


def run_name(run: Run, finding: FindingResult | None = None) -> str:
    """The run's service, plus the case when a finding has several tests or cases on the same service."""
    name = variant_name(run.variant)
    if finding is None:
        return name
    same = [r for r in finding.runs if r.variant_id == run.variant_id]
    if len(same) < 2:
        return name
    function, _, params = run.nodeid.split("::")[-1].partition("[")
    extra = params[:-1].replace(f"{finding.id}[{run.variant_id}]", "").strip("-")
    case = extra.replace("-", " ") or function.removeprefix("test_").replace("_", " ")
    return f"{name}: {case}"


def measurement_rows(measurements: dict) -> list[list[str]]:
    return [[label(k), value(v, k)] for k, v in sorted(measurements.items())]


def detail_rows(details: dict, limit: int = 14) -> list[list[str]]:
    """Details flattened one level; lists of measured sub-attacks keep their summaries (a detector's
    misses belong in its finding's evidence)."""
    rows = []
    for key, item in sorted(details.items()):
        if isinstance(item, list) and item and all(isinstance(v, dict) and "summary" in v for v in item):
            rows.extend([label(key), ("missed: " if v.get("attack_succeeded") else "flagged: ") + text(v["summary"])]
                        for v in item)
        elif isinstance(item, dict) and item and all(not isinstance(v, (dict, list)) for v in item.values()):
            rows.append([label(key), value(item, key)])
        elif isinstance(item, (dict, list)) and len(json.dumps(item)) > 300:
            rows.append([label(key), f"{len(item)} entries (listed in findings.json)"])
        else:
            rows.append([label(key), value(item, key)])
    return rows[:limit]


def sample_lines(sample: dict) -> str:
    """A request and its response as an operator would read them, keys shown only as present."""
    request, response = sample.get("request") or {}, sample.get("response") or {}
    lines = ["Request"]
    headers = request.get("headers")
    if isinstance(headers, dict):
        lines += [f"  {k}: {v}" for k, v in headers.items()] or ["  (no credential, no other header)"]
    for key, item in request.items():
        if key != "headers":
            lines.append(f"  {label(key)}: {_json(item)}")
    lines.append(f"Response{' ' + str(response['status']) if 'status' in response else ''}")
    lines += [f"  {label(k)}: {_json(v)}" for k, v in response.items() if k != "status"]
    for key, item in sample.items():
        if key not in ("label", "request", "response"):
            lines.append(f"{label(key)}: {_json(item)}")
    return "\n".join(lines)


def _json(item) -> str:
    if isinstance(item, str):
        return item
    shown = json.dumps(item, sort_keys=True, ensure_ascii=False)
    return shown if len(shown) <= 600 else shown[:600] + " … (full sample in findings.json)"


def in_run_order(runs) -> list[Run]:
    """As acquired, then hardened (or live), then each control isolated, then checks without a variant."""
    order = {"inherited": 0, "hardened": 1, "live": 1}
    return sorted(runs, key=lambda r: (order.get(r.variant_id or "", 2 if r.variant else 3), r.nodeid))


def run_rows(finding: FindingResult) -> list[list[str]]:
    """One row per run: which service, what it showed, what was measured. Runs that measured nothing for
    the same reason share one row (a white-box family against a live target is one line, not fourteen)."""
    rows, unmeasured = [], {}
    for run in in_run_order(finding.runs):
        if run.not_assessed is not None:
            key = (run.variant_id, run.summary)
            if key in unmeasured:
                unmeasured[key][1] += 1
                continue
            unmeasured[key] = row = [run, 1]
            rows.append(row)
        else:
            rows.append([run, 0])
    return [[run_name(run, finding) if count < 2 else f"{variant_name(run.variant)} ({count} cases)",
             run.result.words, text(run.summary or run.message)] for run, count in rows]


def accepted_text(accepted: Acceptance | None) -> str:
    """An accepted risk (from the CI branch's accepted-risks file) with its owner and expiry."""
    if not accepted:
        return ""
    return f"Accepted risk: owner {accepted.owner}, expires {accepted.expires}; {accepted.reason}"


def comparison_table(comparison: Comparison | None) -> tuple[list[str], list[list[str]]]:
    """The "changes since last run" block as a header and rows."""
    if comparison is None:
        return [], []
    header = ["ID", "Change", "Before", "Now"]
    return header, [[c.id, c.change, c.old_status or "—", c.new_status or "—"] for c in comparison.findings
                    if c.change != "unchanged"]
