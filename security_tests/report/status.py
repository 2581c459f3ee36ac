"""The one place outcomes become statuses: a run's (variant, outcome, evidence) becomes a ``RunResult``,
and a finding's runs become its ``FindingStatus`` together with the runs that decided it, so the measured
text printed beside a status always comes from the runs that gave it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from security_tests.contract import FindingStatus, RunResult, Variant


class JudgedRun(Protocol):
    """What judging needs of a collected run (``records.TestRow`` is one); a protocol, so the rows can use
    ``run_result`` without the two modules importing each other."""

    outcome: str
    not_assessed: object
    """Why the run measured nothing (a ``NotAssessedNote`` with a ``kind``), or None."""

    @property
    def result(self) -> RunResult: ...

    @property
    def judges_finding(self) -> bool: ...


def run_result(variant: Variant | None, outcome: str, attack_succeeded: bool | None, strict_xpass: bool = False,
               residual: bool = False) -> RunResult:
    """What one run showed. ``strict_xpass`` is the plugin's typed record that a strict xfail (a residual
    risk) passed: its attack failed where the risk was expected to hold, which is *not reproduced*."""
    if outcome == "skipped":
        return RunResult.NOT_ASSESSED
    if outcome == "error":
        return RunResult.ERROR
    if outcome == "unknown":
        return RunResult.NOT_RUN
    if attack_succeeded is None:
        return RunResult.ERROR if outcome == "failed" else RunResult.NOT_RUN
    if strict_xpass or outcome == "xpassed":
        return RunResult.NOT_REPRODUCED
    if variant is not None and variant.is_baseline:
        return RunResult.REPRODUCED if attack_succeeded else RunResult.NOT_REPRODUCED
    if variant is not None and variant.is_control_isolation:
        return RunResult.CONTROL_ISOLATED if outcome == "passed" and attack_succeeded else RunResult.NOT_ISOLATED
    if outcome == "xfailed":
        return RunResult.RESIDUAL_OPEN
    if outcome == "passed":
        if residual:
            return RunResult.BLOCKED_RESIDUAL
        return RunResult.CHECK_PASSED if variant is None else RunResult.BLOCKED
    return RunResult.SUCCEEDED if attack_succeeded else RunResult.UNEXPECTED


_FROM_RUN = {
    RunResult.SUCCEEDED: FindingStatus.OPEN, RunResult.UNEXPECTED: FindingStatus.OPEN,
    RunResult.NOT_ISOLATED: FindingStatus.ERROR, RunResult.ERROR: FindingStatus.ERROR,
    RunResult.RESIDUAL_OPEN: FindingStatus.RESIDUAL_RISK,
    RunResult.BLOCKED_RESIDUAL: FindingStatus.CONTROL_VERIFIED_RESIDUAL,
    RunResult.BLOCKED: FindingStatus.FIXED, RunResult.CHECK_PASSED: FindingStatus.FIXED,
    RunResult.NOT_REPRODUCED: FindingStatus.NOT_REPRODUCED, RunResult.NOT_ASSESSED: FindingStatus.NOT_ASSESSED,
    RunResult.NOT_RUN: FindingStatus.NOT_RUN,
}


@dataclass(frozen=True)
class Judgement:
    status: FindingStatus
    deciding: tuple[JudgedRun, ...]
    """The runs the status came from; the report's measured text is theirs and nobody else's."""


def judge(rows: list[JudgedRun], single_target: bool) -> Judgement:
    """A finding's status is its worst judging run (hardened, live, or a check without variants).

    A verified fix needs its as-acquired and control-off runs to have shown what they must: one that failed
    leaves the fix unverified (Error). A single target (only live runs) has no before and after, so a
    blocked attack is ``HELD``, never ``FIXED``. A run the target spoiled (it broke the assessor's rules:
    an answer over the cap, no answer in time, a redirect) leaves the finding *not assessed* unless another
    run measured it open: a held verdict may not stand on the answers the assessor refused to read.
    """
    judging = [row for row in rows if row.judges_finding]
    if not judging:
        return Judgement(FindingStatus.NOT_RUN, ())
    statuses = [(_FROM_RUN[row.result], row) for row in judging]
    worst = min(status for status, _ in statuses)
    deciding = tuple(row for status, row in statuses if status is worst)
    if worst in (FindingStatus.FIXED, FindingStatus.CONTROL_VERIFIED_RESIDUAL):
        broken = tuple(row for row in rows if not row.judges_finding and row.outcome in ("failed", "error"))
        if broken:
            return Judgement(FindingStatus.ERROR, broken)
    spoiled = tuple(row for row in judging if getattr(row.not_assessed, "kind", None) == "target")
    if spoiled and not worst.is_open and worst is not FindingStatus.ERROR:
        return Judgement(FindingStatus.NOT_ASSESSED, spoiled)
    if worst is FindingStatus.FIXED and single_target:
        worst = FindingStatus.HELD
    return Judgement(worst, deciding)


def lift(statuses: dict[str, FindingStatus], residual_in: dict[str, tuple[str, ...]]) -> dict[str, FindingStatus]:
    """A blocked finding whose catalog entry names where its remaining risk lives (``residual_in``) reads
    "control verified, residual risk remains" only while that finding is measured open in this run."""
    lifted = dict(statuses)
    for fid, status in statuses.items():
        holders = residual_in.get(fid, ())
        if status.counts_as_closed and any(statuses.get(h) in (FindingStatus.RESIDUAL_RISK, FindingStatus.OPEN)
                                           for h in holders):
            lifted[fid] = FindingStatus.CONTROL_VERIFIED_RESIDUAL
    return lifted
