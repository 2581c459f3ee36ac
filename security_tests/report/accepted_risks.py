"""Accepted risks: an owner's signed-off decision to live with an open finding until a date.

The file is TOML, one ``[[accept]]`` table per finding with ``id``, ``owner``, ``reason`` and ``expires``.
A file that cannot be trusted to say what its author meant (a missing field, a date that is not a date, an
id the catalog does not know) stops the run: silently ignoring an entry would fail a gate someone thought
they had passed, and silently honouring a typo would pass one they had not.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from security_tests.findings import BY_ID
from security_tests.report.model import Acceptance, AcceptedRisks

if TYPE_CHECKING:
    from security_tests.report.model import Assessment, FindingResult

FIELDS = ("id", "owner", "reason", "expires")


def _expiry(value, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise pytest.UsageError(f"{where}: expires {value!r} is not a date (YYYY-MM-DD)") from None


def load_accepted_risks(path: str | Path) -> list[Acceptance]:
    """Parse and check the whole file; raise ``pytest.UsageError`` with one line naming the first problem."""
    from security_tests.targets.profile import BadInput, read_toml

    try:
        data = read_toml(Path(path), "accepted-risks")
    except BadInput as exc:
        raise pytest.UsageError(f"--accepted-risks {exc}") from None
    entries = data.get("accept", [])
    if not isinstance(entries, list) or set(data) - {"accept"}:
        raise pytest.UsageError(f"--accepted-risks {path}: expected only [[accept]] tables")
    accepted, seen = [], set()
    for number, entry in enumerate(entries, 1):
        where = f"--accepted-risks {path}: entry {number}"
        if not isinstance(entry, dict):
            raise pytest.UsageError(f"{where}: expected a table with {', '.join(FIELDS)}")
        missing = [name for name in FIELDS if not str(entry.get(name, "")).strip()]
        if missing:
            raise pytest.UsageError(f"{where}: missing {', '.join(missing)}")
        unknown = sorted(set(entry) - set(FIELDS))
        not_text = [name for name in FIELDS[:3] if not isinstance(entry[name], str)]
        if unknown or not_text:
            raise pytest.UsageError(f"{where}: " + "; ".join(
                ([f"unknown key(s) {', '.join(unknown)}"] if unknown else [])
                + [f"{name} must be text" for name in not_text]))
        if entry["id"] not in BY_ID:
            raise pytest.UsageError(f"{where}: unknown finding id {entry['id']!r}")
        if entry["id"] in seen:
            raise pytest.UsageError(f"{where}: {entry['id']} is accepted twice")
        seen.add(entry["id"])
        accepted.append(Acceptance(entry["id"], str(entry["owner"]), str(entry["reason"]),
                                   _expiry(entry["expires"], where).isoformat()))
    return accepted


def today() -> date:
    return datetime.now(timezone.utc).date()


def _state(entry: Acceptance, finding: FindingResult | None, on: date) -> str:
    if date.fromisoformat(entry.expires) < on:
        return "expired"
    if finding is None:
        return "not run"
    return "active" if finding.status.is_open else "stale"


def apply_acceptances(assessment: Assessment, entries: list[Acceptance], on: date | None = None) -> None:
    """Mark each finding with its acceptance (or None) and list every entry with its state: ``active``,
    ``expired`` (the date has passed; valid through the expiry day), ``stale`` (the finding is no longer
    open) or ``not run`` (the finding was not assessed in this run)."""
    on = on or today()
    listed = tuple(replace(entry, state=_state(entry, assessment.by_id.get(entry.id), on)) for entry in entries)
    for finding in assessment.findings:
        finding.accepted = next((e for e in listed if e.id == finding.id), None)
    assessment.accepted_risks = AcceptedRisks(on.isoformat(), listed)


def entry_note(entry: Acceptance) -> str:
    label = {"active": "accepted", "expired": "acceptance EXPIRED", "stale": "accepted (stale: no longer open)",
             "not run": "accepted (not assessed in this run)"}[entry.state]
    return f"{label} by {entry.owner} until {entry.expires}: {entry.reason}"


def acceptance_note(finding: FindingResult) -> str:
    """One line for any renderer (console, HTML, summary, PDF): who accepted the finding and until when."""
    return entry_note(finding.accepted) if finding.accepted else ""
