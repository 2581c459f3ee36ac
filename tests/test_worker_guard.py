"""``serve --workers 1`` with memory:// storage stays one worker at run time: SIGTTIN to the arbiter and
a SIGUSR2 re-exec do not add a separately counting worker, and no control socket is opened. The
inherited profile (no rate limit, no guard) takes the same signal and grows, so the test can fail."""

from __future__ import annotations

import os
import signal
import sys
import time
from types import SimpleNamespace

import pytest
import requests

from fraudpipe.serving.server import single_worker_hooks
from security_tests.attacks.client import HttpClient
from security_tests.servers import free_port, serve, settings_env

GOOD = {"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}


def _start(settings, profile: str, tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "fraudpipe", "serve", "--profile", profile, "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]
    env = settings_env(settings, HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path))
    return serve(command, env, port, tmp_path / "server.log")


def _workers_after(server, sig: int, settle: float = 3.0) -> list[int]:
    os.kill(server.process.pid, sig)
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        time.sleep(0.2)
    return server.worker_pids()


@pytest.mark.parametrize("profile, guarded", [("hardened", True), ("inherited", False)])
def test_sigttin_cannot_add_a_worker_that_counts_alone(trained, assessor_key, tmp_path, profile, guarded):
    settings = trained.with_overrides(rate_limit="5/minute", rate_limit_storage="memory://", audit_log=None)
    with _start(settings, profile, tmp_path) as server:
        assert len(server.worker_pids()) == 1
        workers = _workers_after(server, signal.SIGTTIN)
        workers = _workers_after(server, signal.SIGTTIN) if guarded else workers
        assert (len(workers) == 1) is guarded, (workers, server.log.read_text()[-1500:])
        assert not any(tmp_path.rglob("*.ctl")), "a gunicorn control socket was opened"
        if guarded:
            # its own source address: the start-up health polls from 127.0.0.1 count against that address
            client = HttpClient(server.url, api_key=assessor_key, source_address="127.0.0.9")
            statuses = [client.predict(GOOD).status for _ in range(12)]
            assert statuses.count(200) == 5, statuses
            assert "refusing 2 workers" in server.log.read_text()


def test_sigusr2_reexec_does_not_start_a_second_master(trained, tmp_path):
    settings = trained.with_overrides(rate_limit_storage="memory://", audit_log=None)
    with _start(settings, "hardened", tmp_path) as server:
        os.kill(server.process.pid, signal.SIGUSR2)
        time.sleep(3.0)
        assert len(server.worker_pids()) == 1 and server.process.poll() is None
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
        assert "refusing to re-exec" in server.log.read_text()


def test_a_worker_forked_past_the_target_stops_the_server():
    server = SimpleNamespace(num_workers=2, WORKER_BOOT_ERROR=3, _num_workers=2,
                             log=SimpleNamespace(error=lambda *args: None))
    hooks = single_worker_hooks()
    with pytest.raises(SystemExit) as stopped:
        hooks["post_fork"](server, SimpleNamespace(pid=1234))
    assert stopped.value.code == 3
    hooks["nworkers_changed"](server, 2, 1)
    assert server._num_workers == 1
