"""What the controls plug into: the loaded model and the seams a control may replace or extend.

The core service reads a body leniently, answers with the probability and records nothing; each
control's ``install`` swaps one seam (``parse``, ``render``) or adds to one:
- ``checks``: each sees the request and its context before the view, in installation order, and refuses
  by raising ``ApiError``;
- ``answer_gates``: each sees the answer's status (with the request and its context) before it is
  recorded, and may replace the answer by raising ``ApiError``;
- ``sinks``: each takes the request's records (and its context) and returns records to add;
- ``readiness_checks``: each returns None when its dependency is usable, else the reason it is not;
- ``identify``: the key id of an authenticated caller, None for anyone else.

A request's context is any object with attributes: Flask's ``g`` on Flask's routes, a plain one on the
direct ``/predict`` route (``predict_route``). The controls never touch Flask's context-local proxies,
so one set of controls serves both routes.

Readiness is every dependency at once, and its details are for operators: an anonymous caller learns
only ready or not; the reasons go to the log and to an authenticated caller, with absolute paths cut to
their last part so neither learns the server's layout.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from flask import jsonify

from fraudpipe.serving.audit import request_record
from fraudpipe.serving.errors import ApiError, error_answer
from fraudpipe.serving.front import BODY_TIMED_OUT
from fraudpipe.serving.model_service import ModelService
from fraudpipe.serving.output import with_probability
from fraudpipe.serving.validation import parse_lax
from fraudpipe.settings import Settings

Sink = Callable[[list[dict], object], list[dict]]
Answer = tuple[int, dict, dict]  # status, JSON body, extra headers
NOT_RECORDED: Answer = (503, {"error": "not_ready", "reason": "the request could not be recorded; try again later"}, {})
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/'\":,]+/)*([^\s/'\":,]*)")
log = logging.getLogger("fraudpipe")


def without_paths(text: str) -> str:
    """``/srv/app/artifacts/model/manifest.json`` becomes ``manifest.json``."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "<path>", text)


@dataclass
class Service:
    profile: str
    controls: frozenset[str]
    settings: Settings
    model: ModelService
    parse: Callable[..., np.ndarray] = parse_lax
    render: Callable[[int, float], dict] = with_probability
    sinks: list[Sink] = field(default_factory=list)
    readiness_checks: list[Callable[[], str | None]] = field(default_factory=list)
    identify: Callable[..., str | None] = lambda request: None
    answer_gates: list[Callable] = field(default_factory=list)
    checks: list[Callable] = field(default_factory=list)
    shared_monitor: bool = True
    host_monitor: object | None = None  # ``monitor_host.HostMonitorStore``: what ``serve`` shares between its workers
    rate_store: object | None = None
    _last_reasons: list[str] | None = field(default=None, init=False, repr=False)

    @cached_property
    def keys(self):
        """The API keys, read once for the controls that need them (the limiter and auth)."""
        from fraudpipe.serving.auth import KeyStore

        return KeyStore.from_settings(self.settings.api_keys, self.settings.readable_api_keys_file)

    def begin(self, asked, context) -> None:
        """Every request, before its view: its id and clock, then each control's check in order."""
        context.request_id = os.urandom(16).hex()
        context.started = time.perf_counter()
        context.key_id = None
        if asked.environ.get(BODY_TIMED_OUT):
            raise ApiError(408, "request_timeout", "the request body did not arrive in time; send it at once")
        for check in self.checks:
            check(asked, context)

    def answer(self, asked, context) -> dict:
        """The model's answer to one transaction, as the profile renders it."""
        if not self.model.ready:
            raise ApiError(503, "not_ready", "the model is not loaded; the service log says why")
        row = self.parse(asked)
        label, probability = self.model.predict(row)
        context.row = row[0]  # what the monitor orders, as parsed
        context.features, context.prediction, context.probability = row[0].tolist(), label, probability
        return self.render(label, probability)

    def settle(self, status: int, asked, context) -> Answer | None:
        """Every request, after its view: the gates, then the record. Returns the answer that replaces the
        view's when a gate refuses it or it cannot be recorded (a full disk: 503, an answer nobody logged
        is never given); None when the view's answer stands."""
        replaced = None
        for gate in self.answer_gates:
            try:
                gate(status, asked, context)
            except ApiError as exc:
                replaced = error_answer(exc, context)
                status = replaced[0]
        if self.sinks:
            records = [request_record(status, asked, context)]
            try:
                for sink in self.sinks:
                    records.extend(sink(records, context))
            except OSError as exc:
                log.error("request %s not recorded: %s", records[0]["request_id"], exc.strerror)
                replaced = NOT_RECORDED
        return replaced

    def not_ready_reasons(self, full_paths: bool = False) -> list[str]:
        """One reason per unusable dependency; a check that raises counts as a failed check, not a crash.
        Paths are cut to their last part unless ``full_paths`` (the operator's own console at start)."""
        reasons = [] if self.model.ready else [f"artifacts: {self.model.reason}"]
        for check in self.readiness_checks:
            try:
                reason = check()
            except Exception as exc:  # a broken check must make the service not ready, never answer 500
                reason = f"{getattr(check, '__name__', 'check')}: {type(exc).__name__}: {exc}"
            if reason:
                reasons.append(reason)
        return reasons if full_paths else [without_paths(reason) for reason in reasons]

    def health(self, request):
        reasons = self.not_ready_reasons()
        if reasons != self._last_reasons:
            self._last_reasons = reasons
            if reasons:
                log.warning("not ready: %s", "; ".join(reasons))
            else:
                log.info("ready")
        body = {"status": "not ready" if reasons else "ok"}
        if self.identify(request) is not None:
            model = self.model
            body.update({"ready": not reasons, "reasons": reasons, "profile": self.profile,
                         "artifacts_verified": model.verified and model.ready,
                         "model_sha256_prefix": model.model_sha256[:12] or None})
        return jsonify(body), 503 if reasons else 200
