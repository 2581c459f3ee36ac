"""Shared fixtures: one set of signed artifacts per session, in a temporary folder with its own keys."""

from __future__ import annotations

import secrets

import pytest

from fraudpipe.data import Recipe
from fraudpipe.pipeline import train
from fraudpipe.settings import Settings
from security_tests.servers import redis_available, redis_server

pytest_plugins = ["security_tests.target", "security_tests.report.plugin"]


@pytest.fixture(scope="session")
def assessor_key() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, assessor_key) -> Settings:
    """Artifacts and keys in a temporary folder: the suite never touches a user's real keys."""
    root = tmp_path_factory.mktemp("fraudpipe")
    settings = Settings(artifacts_dir=root / "model", signing_key=root / "keys" / "signing-key.pem",
                        trusted_key=root / "keys" / "trusted-key.pub", api_keys=(assessor_key,),
                        audit_log=None, rate_limit="100/minute")
    train(settings, recipe=Recipe(), progress=lambda _: None)
    return settings


@pytest.fixture(scope="module")
def redis_url():
    """A throw-away redis-server per test module (fresh counts), or a skip where none is installed."""
    if not redis_available():
        pytest.skip("redis-server not installed (.ci/run installs it)")
    with redis_server() as url:
        yield url
