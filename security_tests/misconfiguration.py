"""An operator's wrong setting, as a deployment meets it: the service either refuses to start (a one-line
``ConfigError``) and the operator corrects the value as the error says, or it starts with the value as
written. Either way the finding's own attack then runs on what is serving, so a setting that is accepted
and quietly weakens the control shows up as the attack succeeding, and a refusal is recorded beside it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fraudpipe.errors import ConfigError

Started = TypeVar("Started")


def deploy(start: Callable[..., Started], wrong: dict, corrected: dict) -> tuple[Started, str | None]:
    """``start(**wrong)``, or when that refuses to start, ``start(**corrected)``; with the refusal's text."""
    try:
        return start(**wrong), None
    except ConfigError as exc:
        return start(**corrected), str(exc)


def as_deployed(setting: str, refusal: str | None) -> str:
    """How the evidence names what was started: ``rate_limit '1000/minute;5/minute' refused at start (...)``."""
    return f"{setting} refused at start ({refusal}), then corrected" if refusal else f"{setting} ACCEPTED at start"
