"""The service as deployed: gunicorn with two workers, Redis-backed limits, the assessment over HTTP,
a bounded load, and a worker killed mid-load. Every server here is on 127.0.0.1 and stopped after."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from fraudpipe.data import FRAUD_EXAMPLE
from fraudpipe.serving.audit import read_records
from security_tests.load import run_load
from security_tests.servers import (ROOT, fraudpipe_serve, free_port, gunicorn_direct, redis_available,
                                    redis_server)

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server not installed (.ci/run installs it)")
KEYS = tuple(f"live-key-{i:02d}-sdq7wxz" for i in range(12))  # strong enough for Settings


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def deployed(trained, redis_url, tmp_path_factory):
    """``python -m fraudpipe serve --profile hardened --workers 2`` with limits in Redis."""
    root = tmp_path_factory.mktemp("deployed")
    settings = trained.with_overrides(api_keys=KEYS, rate_limit_storage=redis_url, audit_log=root / "audit.jsonl")
    with fraudpipe_serve(settings, free_port(), root / "server.log", workers=2) as server:
        yield server, settings


def test_assessment_runs_black_box_over_http_against_the_deployed_service(deployed, tmp_path):
    server, _ = deployed
    args = [sys.executable, "-m", "pytest", "security_tests", "--target-url", server.url, "-q",
            "-p", "no:cacheprovider", f"--assessment-dir={tmp_path}", f"--html={tmp_path / 'r.html'}"]
    for key in KEYS:
        args += ["--api-key", key]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    findings = {f["id"]: f for f in json.loads((tmp_path / "findings.json").read_text())["findings"]}
    for finding_id in ("CRIT-1", "CRIT-2", "HIGH-1", "MED-1"):
        assert findings[finding_id]["status"] == "Verified fixed", finding_id
    for finding_id in ("HIGH-3", "HIGH-4"):
        assert findings[finding_id]["status"] == "OPEN (residual risk)"
    assert findings["HIGH-2"]["status"] == "Not assessed"
    text = "\n".join(p.extract_text() for p in PdfReader(tmp_path / "security-assessment.pdf").pages)
    assert server.url in text and "black-box" in text


def test_a_remote_target_is_refused_without_the_explicit_flag():
    result = subprocess.run([sys.executable, "-m", "pytest", "security_tests", "--target-url", "http://192.0.2.1:8000",
                             "-p", "no:cacheprovider", "--co", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "not a loopback address" in result.stderr + result.stdout


def _count_answers(url: str, key: str, total: int) -> dict:
    return run_load(url, FRAUD_EXAMPLE, key, clients=8, seconds=30, max_requests=total).as_dict()


def test_redis_storage_holds_one_limit_across_two_workers(deployed):
    server, settings = deployed
    key = KEYS[-1]
    measured = _count_answers(server.url, key, 300)
    assert len(server.worker_pids()) == 2
    assert measured["statuses"] == {200: 100, 429: 200}, measured


def test_memory_storage_with_two_workers_lets_each_worker_count_alone(trained, tmp_path):
    """Why serve refuses memory:// with several workers: measured here by starting gunicorn directly."""
    settings = trained.with_overrides(api_keys=KEYS, rate_limit_storage="memory://", audit_log=None)
    with gunicorn_direct(settings, free_port(), tmp_path / "server.log", workers=2) as server:
        measured = _count_answers(server.url, KEYS[0], 400)
    answered = measured["statuses"].get(200, 0)
    assert answered > 100, f"expected the limit to be exceeded with per-worker counts: {measured}"
    refused = subprocess.run([sys.executable, "-m", "fraudpipe", "serve", "--workers", "2"], cwd=ROOT,
                             capture_output=True, text=True, env={**os.environ, "FRAUDPIPE_RATE_LIMIT_STORAGE": "memory://"})
    assert refused.returncode == 2 and "would each count" in refused.stderr


@pytest.fixture(scope="module")
def loaded_service(trained, redis_url, tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    settings = trained.with_overrides(api_keys=KEYS, rate_limit_storage=redis_url, rate_limit="1000000/minute",
                                      audit_log=root / "audit.jsonl")
    with fraudpipe_serve(settings, free_port(), root / "server.log", workers=2) as server:
        yield server, settings


def test_bounded_load_gets_no_5xx_and_one_audit_record_per_answer(loaded_service):
    server, settings = loaded_service
    before = len(read_records(settings.audit_log))
    result = run_load(server.url, FRAUD_EXAMPLE, KEYS[0], clients=8, seconds=4)
    records = [r for r in read_records(settings.audit_log)[before:] if r.get("type") != "alert"]
    assert result.errors == 0 and not any(status >= 500 for status in result.statuses), result.as_dict()
    assert result.statuses.get(200, 0) == result.responses > 100
    assert len(records) == result.responses
    assert len({r["request_id"] for r in records}) == len(records)


def test_killed_worker_is_replaced_and_the_audit_log_stays_whole(loaded_service):
    server, settings = loaded_service
    before_text = Path(settings.audit_log).read_text()
    victims = server.worker_pids()
    assert len(victims) == 2

    def kill_one() -> None:
        os.kill(victims[0], signal.SIGKILL)

    result = run_load(server.url, FRAUD_EXAMPLE, KEYS[1], clients=8, seconds=4, during=kill_one)
    time.sleep(1.0)
    workers = server.worker_pids()
    assert len(workers) == 2 and victims[0] not in workers
    assert result.errors <= 8 and not any(status >= 500 for status in result.statuses), result.as_dict()
    lines = Path(settings.audit_log).read_text()[len(before_text):].splitlines()
    records = [json.loads(line) for line in lines]
    requests_logged = [r for r in records if r.get("type") != "alert"]
    assert result.responses <= len(requests_logged) <= result.responses + result.errors
