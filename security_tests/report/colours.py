"""The report's colours: a renderer's choice, kept out of the contract's enums. One table for the PDF and
the HTML page, so a status reads the same colour in both."""

from __future__ import annotations

from security_tests.contract import FindingStatus, RunResult, Severity

RED, ORANGE, GREEN, BLUE, GREY, DARK_RED = (190, 30, 30), (200, 110, 0), (26, 127, 55), (60, 110, 160), \
    (90, 90, 90), (128, 0, 0)

SEVERITY = {Severity.CRITICAL: DARK_RED, Severity.HIGH: RED, Severity.MEDIUM: ORANGE, Severity.LOW: BLUE,
            Severity.NONE: GREY}
STATUS = {FindingStatus.OPEN: RED, FindingStatus.ERROR: RED, FindingStatus.RESIDUAL_RISK: ORANGE,
          FindingStatus.CONTROL_VERIFIED_RESIDUAL: ORANGE, FindingStatus.FIXED: GREEN, FindingStatus.HELD: GREEN,
          FindingStatus.NOT_ASSESSED: GREY, FindingStatus.NOT_RUN: GREY, FindingStatus.NOT_REPRODUCED: ORANGE}
RUN = {RunResult.SUCCEEDED: RED, RunResult.UNEXPECTED: RED, RunResult.ERROR: RED, RunResult.NOT_ISOLATED: RED,
       RunResult.RESIDUAL_OPEN: ORANGE, RunResult.BLOCKED_RESIDUAL: ORANGE, RunResult.BLOCKED: GREEN,
       RunResult.CHECK_PASSED: GREEN, RunResult.REPRODUCED: RED, RunResult.CONTROL_ISOLATED: GREEN,
       RunResult.NOT_REPRODUCED: ORANGE, RunResult.NOT_ASSESSED: GREY, RunResult.NOT_RUN: GREY}
BY_LABEL = {status.label: colour for status, colour in STATUS.items()}
"""For table cells that hold a finding status's label."""


def css(colour: tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % colour
