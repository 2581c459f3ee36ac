"""``serve``: the app behind granian's HTTP/1.1 server and the body-timing front, never a development server.

granian was chosen by measurement (``bench.serve``, README "Serving"): its Rust side parses requests and
keeps connections alive, so the Python worker spends its time on the request, not on the socket.

Refuses two unsafe combinations before binding: the inherited profile on a non-loopback address (it
has no authentication), and in-process rate-limit storage with several workers (each worker would
count alone, multiplying the limit by the number of workers). That second refusal also holds while the
server runs: granian has no signal or socket that adds workers, and the one signal that restarts them
(SIGHUP, which starts each new worker seconds before stopping the old one, two counting apart) is
refused while counts are in-process. A worker that dies is replaced (it takes its counts with it, as
it would under any server).
"""

from __future__ import annotations

import ipaddress
import multiprocessing
import signal
import sys

from fraudpipe.errors import ConfigError
from fraudpipe.settings import Settings

GRACEFUL_STOP_SECONDS = 5
_served: tuple[Settings, str, object] | None = None


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


def startup_reasons(settings: Settings, profile: str) -> list[str]:
    """Why the service would start not ready, with full paths: said once on the operator's console, so the
    first run does not end in a bare 503 whose reason only a keyed caller or the log can read."""
    from fraudpipe.serving.app import create_app

    return create_app(profile, settings=settings).extensions["fraudpipe"].not_ready_reasons(full_paths=True)


def host_monitor_for(settings: Settings, profile: str):
    """The monitor's state for every worker of this host, mapped before they fork (``monitor_host``); with
    ``memory://`` storage there is one worker and its monitor keeps its own state."""
    if profile != "hardened" or settings.rate_limit_storage.startswith("memory://"):
        return None
    from fraudpipe.data import FEATURE_NAMES
    from fraudpipe.serving.monitor_host import HostMonitorStore
    from fraudpipe.serving.monitor_store import SharedMonitorStore

    return HostMonitorStore(len(FEATURE_NAMES), SharedMonitorStore(settings.rate_limit_storage))


def served_app():
    """granian's factory, run in each forked worker: its own app, Redis connection and audit descriptor."""
    from fraudpipe.serving.app import create_app
    from fraudpipe.serving.front import front_for

    settings, profile, host_monitor = _served
    app = create_app(profile, settings=settings, host_monitor=host_monitor)
    return front_for(app, settings, validated="validate_input" in app.extensions["fraudpipe"].controls)


def serve(settings: Settings, profile: str = "hardened", host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1) -> int:
    global _served
    check_serving(settings, profile, host, workers)
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    for reason in startup_reasons(settings, profile):
        print(f"not ready: {reason}", file=sys.stderr, flush=True)
    host_monitor = host_monitor_for(settings, profile)
    _served = (settings, profile, host_monitor)
    multiprocessing.set_start_method("fork", force=True)  # workers inherit ``_served``, never the environment
    single = counts_in_process(settings, profile)

    class _Server(Server):
        def signal_handler_reload(self, *args, **kwargs) -> None:
            if single:
                print("refusing to restart workers (SIGHUP): memory:// rate-limit storage would count in two "
                      "workers while the new one starts; use FRAUDPIPE_RATE_LIMIT_STORAGE=redis://...",
                      file=sys.stderr, flush=True)
                return
            super().signal_handler_reload(*args, **kwargs)

    # SIGUSR2 (gunicorn's "start a second master") would kill granian's master by default and leave its
    # workers serving unsupervised: no respawn, no graceful stop.
    signal.signal(signal.SIGUSR2, lambda *_: print("ignoring SIGUSR2: serve has no second master",
                                                   file=sys.stderr, flush=True))
    _Server(f"{__name__}:served_app", address=host.strip("[]"), port=port, interface=Interfaces.RSGI,
            workers=workers, http=HTTPModes.http1, websockets=False, factory=True,
            http1_settings=HTTP1Settings(header_read_timeout=settings.client_timeout * 1000, keep_alive=True),
            log_access=False, workers_kill_timeout=GRACEFUL_STOP_SECONDS, respawn_failed_workers=True).serve()
    if host_monitor is not None:
        write_out(host_monitor, settings)
    return 0


def write_out(host_monitor, settings: Settings) -> None:
    """The monitor's table goes to Redis once the workers have stopped, so the next start forgets no
    client's history or flag, and the host leaves the hosts serving; if Redis cannot take it, the operator
    is told how much was lost."""
    from fraudpipe.serving.ratelimit_store import Rate, StoreUnavailable, open_store

    try:
        written = host_monitor.write_out()
    except StoreUnavailable as exc:
        print(f"monitor state not written to Redis ({exc}): clients' histories start again", file=sys.stderr, flush=True)
    else:
        print(f"monitor state of {written} clients written to Redis", file=sys.stderr, flush=True)
    try:
        open_store(settings.rate_limit_storage, Rate.parse(settings.rate_limit), host_id=host_monitor.host_id).leave()
    except StoreUnavailable as exc:  # it drops out of the hosts serving a minute after its last call instead
        print(f"host not taken off the hosts serving ({exc})", file=sys.stderr, flush=True)
