"""``serve --workers 1`` with memory:// storage stays one worker at run time. granian has no signal or
socket that adds workers; the one signal that restarts them (SIGHUP) starts the new worker seconds
before stopping the old one, two workers counting apart, so serve refuses it while counts are in-process.
The inherited profile (no rate limit, no guard) takes the same signal and runs two workers for a while,
so the test can fail. SIGTTIN and SIGUSR2, which add workers or a second master under gunicorn, add
nothing here."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from security_tests.attacks.client import HttpClient
from security_tests.servers import free_port, serve, settings_env

GOOD = {"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}


def _start(settings, profile: str, tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "fraudpipe", "serve", "--profile", profile, "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]
    env = settings_env(settings, HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path))
    return serve(command, env, port, tmp_path / "server.log")


def _most_workers(server, sig: int, settle: float = 2.5) -> int:
    """The most workers seen at once over ``settle`` seconds after the signal."""
    os.kill(server.process.pid, sig)
    most, deadline = 0, time.monotonic() + settle
    while time.monotonic() < deadline:
        most = max(most, len(server.worker_pids()))
        time.sleep(0.1)
    return most


@pytest.mark.parametrize("profile, guarded", [("hardened", True), ("inherited", False)])
def test_sighup_cannot_start_a_second_worker_that_counts_alone(trained, assessor_key, tmp_path, profile, guarded):
    settings = trained.with_overrides(rate_limit="5/minute", rate_limit_storage="memory://", audit_log=None)
    with _start(settings, profile, tmp_path) as server:
        assert len(server.worker_pids()) == 1
        assert (_most_workers(server, signal.SIGHUP) == 1) is guarded, server.log.read_text()[-1500:]
        if guarded:
            assert "refusing to restart workers (SIGHUP)" in server.log.read_text()
            # its own source address: the start-up health polls from 127.0.0.1 count against that address
            client = HttpClient(server.url, api_key=assessor_key, source_address="127.0.0.9")
            statuses = [client.predict(GOOD).status for _ in range(12)]
            assert statuses.count(200) == 5, statuses


def test_no_other_signal_adds_a_worker_or_a_master(trained, tmp_path):
    """Nor takes the master away: SIGUSR2 used to kill granian's master (its default action), leaving the
    worker serving unsupervised and this test passing on zero workers."""
    import requests

    settings = trained.with_overrides(rate_limit_storage="memory://", audit_log=None)
    with _start(settings, "hardened", tmp_path) as server:
        for sig in (signal.SIGTTIN, signal.SIGUSR2):
            assert _most_workers(server, sig, settle=1.0) == 1, server.log.read_text()[-1500:]
            assert server.process.poll() is None and requests.get(f"{server.url}/health", timeout=5).ok
