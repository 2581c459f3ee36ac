"""Loading the model for serving and calling it; a failed load leaves the service up but not ready."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudpipe.artifacts import load_artifacts, load_unverified
from fraudpipe.compiled import CompiledForest
from fraudpipe.settings import Settings


@dataclass
class ModelService:
    compiled: CompiledForest | None
    verified: bool
    model_sha256: str = ""
    reason: str | None = None

    @property
    def ready(self) -> bool:
        return self.compiled is not None

    @classmethod
    def load(cls, settings: Settings, verify: bool) -> "ModelService":
        """Verified: signature, hashes, and arrays only. Unverified: the acquired ``joblib.load``."""
        try:
            if verify:
                loaded = load_artifacts(settings.artifacts_dir, settings.trusted_key, pickles=False)
            else:
                loaded = load_unverified(settings.artifacts_dir)
        except Exception as exc:  # a trojaned pickle can raise anything; the service must still answer
            return cls(None, verify, reason=f"{type(exc).__name__}: {exc}")
        return cls(loaded.compiled, verify, loaded.model_sha256)

    def predict(self, row: np.ndarray) -> tuple[int, float]:
        return self.compiled.predict_one(row[0])
