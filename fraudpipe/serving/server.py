"""``serve``: the app under gunicorn, never Werkzeug's development server.

Refuses two unsafe combinations before binding: the inherited profile on a non-loopback address (it
has no authentication), and in-process rate-limit storage with several workers (each worker would
count alone, multiplying the limit by the number of workers). That second refusal also holds while the
server runs: with in-process storage, gunicorn's hooks pin the worker count at one (SIGTTIN is undone,
a worker forked past the limit stops the server, a SIGUSR2 re-exec that would run a second master is
refused) and the control socket, which can add workers, is never opened.
"""

from __future__ import annotations

import ipaddress
import os
import sys

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
    if workers > 1 and counts_in_process(settings, profile):
        raise ConfigError(f"{workers} workers with FRAUDPIPE_RATE_LIMIT_STORAGE=memory:// would each count "
                          "the rate limit alone; use redis://... or --workers 1")


def counts_in_process(settings: Settings, profile: str) -> bool:
    """Whether each worker would keep its own rate-limit counts (only the hardened profile limits)."""
    return profile == "hardened" and settings.rate_limit_storage.startswith("memory://")


def single_worker_hooks() -> dict:
    """gunicorn server hooks that keep one worker, whatever signal or command asks for more."""

    def nworkers_changed(server, new_value: int, old_value: int | None) -> None:
        if new_value is not None and new_value > 1:
            server.log.error("refusing %d workers: memory:// rate-limit storage counts per worker; "
                             "use FRAUDPIPE_RATE_LIMIT_STORAGE=redis://...", new_value)
            server._num_workers = 1  # the property setter would call this hook again

    def post_fork(server, worker) -> None:
        if server.num_workers > 1:
            server.log.error("worker %s started beside others with memory:// rate-limit storage; stopping", worker.pid)
            sys.exit(server.WORKER_BOOT_ERROR)  # the arbiter halts: no second, separately counting worker

    def pre_exec(server) -> None:
        server.log.error("refusing to re-exec (SIGUSR2): two masters would each count the rate limit alone")
        os._exit(1)

    return {"nworkers_changed": nworkers_changed, "post_fork": post_fork, "pre_exec": pre_exec}


def startup_reasons(settings: Settings, profile: str) -> list[str]:
    """Why the service would start not ready, with full paths: said once on the operator's console, so the
    first run does not end in a bare 503 whose reason only a keyed caller or the log can read."""
    from fraudpipe.serving.app import create_app

    return create_app(profile, settings=settings).extensions["fraudpipe"].not_ready_reasons(full_paths=True)


def serve(settings: Settings, profile: str = "hardened", host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1) -> int:
    check_serving(settings, profile, host, workers)
    from gunicorn.app.base import BaseApplication

    from fraudpipe.serving.app import create_app

    for reason in startup_reasons(settings, profile):
        print(f"not ready: {reason}", file=sys.stderr, flush=True)

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("accesslog", None)
            self.cfg.set("graceful_timeout", 5)
            self.cfg.set("control_socket_disable", True)
            if counts_in_process(settings, profile):
                for name, hook in single_worker_hooks().items():
                    self.cfg.set(name, hook)

        def load(self):
            return create_app(profile, settings=settings)

    _Server().run()
    return 0
