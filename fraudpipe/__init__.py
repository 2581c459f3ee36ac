"""fraudpipe: a fraud-detection pipeline and the inference service its security assessment attacks."""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(profile: str = "hardened", settings=None, controls_off=(), **options):
    """The Flask app factory; imported lazily so ``import fraudpipe`` does no work."""
    from fraudpipe.serving.app import create_app as _create_app

    return _create_app(profile, settings=settings, controls_off=controls_off, **options)
