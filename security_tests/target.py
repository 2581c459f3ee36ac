"""Where the assessment points: in-process profiles (default) or a live URL (``--target-url``).

A live target is attacked through the same attack functions over real HTTP. Only loopback URLs are
accepted unless ``--allow-remote-target`` is given. Against a loopback target each test gets its own
loopback source address and API key (when several are given), so one test's rate-limit budget does not
leak into the next.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pytest

from fraudpipe.serving.server import is_loopback


@dataclass
class LiveTarget:
    url: str
    api_keys: list[str]
    expected_rate_limit: int
    loopback: bool
    _identities: itertools.count = field(default_factory=lambda: itertools.count())

    def next_identity(self) -> tuple[str | None, str | None]:
        index = next(self._identities)
        key = self.api_keys[index % len(self.api_keys)] if self.api_keys else None
        source = str(ipaddress.ip_address("127.0.1.1") + index) if self.loopback else None
        return key, source


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fraudpipe target")
    group.addoption("--target-url", default=None, help="assess a running service over HTTP instead of in-process")
    group.addoption("--api-key", action="append", default=[], help="API key for the live target (repeatable)")
    group.addoption("--allow-remote-target", action="store_true", help="permit a non-loopback --target-url")
    group.addoption("--expected-rate-limit", type=int, default=100,
                    help="requests per window the live target should allow (default 100)")
    group.addoption("--break-control", default=None, metavar="CONTROL",
                    help="switch CONTROL off in the 'hardened' variant, to show that exactly its finding fails")


def pytest_configure(config: pytest.Config) -> None:
    url = config.getoption("target_url")
    if not url:
        return
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise pytest.UsageError(f"--target-url must be http(s)://HOST:PORT, got {url!r}")
    if not is_loopback(parsed.hostname) and not config.getoption("allow_remote_target"):
        raise pytest.UsageError(f"--target-url {url} is not a loopback address; pass --allow-remote-target "
                                "only for a service you are authorised to attack")


TARGET_KEY = pytest.StashKey[LiveTarget]()


def live_target(config: pytest.Config) -> LiveTarget | None:
    url = config.getoption("target_url", default=None)
    if not url:
        return None
    if TARGET_KEY not in config.stash:
        config.stash[TARGET_KEY] = LiveTarget(url.rstrip("/"), list(config.getoption("api_key")),
                                              config.getoption("expected_rate_limit"),
                                              is_loopback(urlparse(url).hostname))
    return config.stash[TARGET_KEY]
