"""What the controls plug into: the loaded model and the seams a control may replace or extend.

The core service reads a body leniently, answers with the probability and records nothing; each
control's ``install`` swaps one seam (``parse``, ``render``) or adds to one (``sinks``, ``predict_wrappers``,
``readiness_checks``: each returns None when its dependency is usable, else the reason it is not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from flask import jsonify

from fraudpipe.serving.errors import ApiError
from fraudpipe.serving.model_service import ModelService
from fraudpipe.serving.output import with_probability
from fraudpipe.serving.validation import parse_lax
from fraudpipe.settings import Settings

Sink = Callable[[list[dict]], list[dict]]


@dataclass
class Service:
    profile: str
    controls: frozenset[str]
    settings: Settings
    model: ModelService
    parse: Callable[..., np.ndarray] = parse_lax
    render: Callable[[int, float], dict] = with_probability
    sinks: list[Sink] = field(default_factory=list)
    predict_wrappers: list[Callable] = field(default_factory=list)
    readiness_checks: list[Callable[[], str | None]] = field(default_factory=list)

    def predict_row(self, request) -> np.ndarray:
        if not self.model.ready:
            raise ApiError(503, "not_ready", f"model not loaded: {self.model.reason}")
        return self.parse(request)

    def wrap_predict(self, view: Callable) -> Callable:
        for wrap in self.predict_wrappers:
            view = wrap(view)
        return view

    def health(self):
        model = self.model
        body = {"status": "ok" if model.ready else "not ready", "ready": model.ready, "profile": self.profile,
                "artifacts_verified": model.verified, "model_sha256_prefix": model.model_sha256[:12] or None}
        if not model.ready:
            body["reason"] = model.reason
        return jsonify(body), 200 if model.ready else 503
