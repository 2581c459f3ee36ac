"""``serve``: the app under gunicorn, never Werkzeug's development server.

Refuses two unsafe combinations before binding: the inherited profile on a non-loopback address (it
has no authentication), and in-process rate-limit storage with several workers (each worker would
count alone, multiplying the limit by the number of workers).
"""

from __future__ import annotations

import ipaddress

from fraudpipe.errors import ConfigError
from fraudpipe.settings import Settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_serving(settings: Settings, profile: str, host: str, workers: int) -> None:
    if profile == "inherited" and not is_loopback(host):
        raise ConfigError(f"the inherited profile has no authentication; refusing to bind to {host} "
                          "(use 127.0.0.1, or --profile hardened)")
    if profile == "hardened" and workers > 1 and settings.rate_limit_storage.startswith("memory://"):
        raise ConfigError(f"{workers} workers with FRAUDPIPE_RATE_LIMIT_STORAGE=memory:// would each count "
                          "the rate limit alone; use redis://... or --workers 1")


def serve(settings: Settings, profile: str = "hardened", host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1) -> int:
    check_serving(settings, profile, host, workers)
    from gunicorn.app.base import BaseApplication

    from fraudpipe.serving.app import create_app

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("accesslog", None)
            self.cfg.set("graceful_timeout", 5)

        def load(self):
            return create_app(profile, settings=settings)

    _Server().run()
    return 0
