"""The service as deployed: gunicorn with two workers, Redis-backed limits, the assessment over HTTP,
a bounded load, and a worker killed mid-load. Every server here is on 127.0.0.1 and stopped after."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pypdf import PdfReader

from fraudpipe.data import FRAUD_EXAMPLE
from fraudpipe.serving.audit import read_records
from security_tests.attacks.client import HttpClient
from security_tests.attacks.rate_limit import boundary_burst
from security_tests.load import run_load
from security_tests.servers import (ROOT, fraudpipe_serve, free_port, redis_available,
                                    redis_server, serve)

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server not installed (.ci/run installs it)")
KEYS = tuple(f"live-key-{i:02d}-sdq7wxz" for i in range(14))  # strong enough for Settings
LOAN_PROFILE = ROOT / "tests" / "targets" / "loan_service.toml"
BLACK_BOX = ("CRIT-1", "CRIT-2", "HIGH-1", "MED-1")


def assess(url: str, keys, out: Path, network: str, profile: Path | None = None, pdf: bool = False,
           extra: tuple[str, ...] = (), suite: str | tuple[str, ...] = "security_tests",
           env: dict | None = None) -> dict:
    """The live suite (or some findings' files of it) in a subprocess, as a user runs it; returns findings.json
    by finding id."""
    suites = (suite,) if isinstance(suite, str) else suite
    args = [sys.executable, "-m", "pytest", *suites, "--target-url", url, "-q", "-p", "no:cacheprovider",
            f"--assessment-dir={out}", "--max-wait", "0", "--source-addresses", network, "-o", "addopts=", *extra]
    args += ["--target-profile", str(profile)] if profile else []
    args += [] if pdf else ["--no-assessment-pdf"]
    for key in keys:
        args += ["--api-key", key]
    env = {k: v for k, v in (env or os.environ).items() if not k.startswith("PYTEST_")}
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)
    assert (out / "findings.json").exists(), result.stdout[-3000:] + result.stderr[-2000:]
    assessment = json.loads((out / "findings.json").read_text())
    return {f["id"]: f for f in assessment["findings"]} | {"_assessment": assessment, "_stdout": result.stdout}


@pytest.fixture(scope="module")
def deployed(trained, redis_url, tmp_path_factory):
    """``python -m fraudpipe serve --profile hardened --workers 2`` with limits in Redis."""
    root = tmp_path_factory.mktemp("deployed")
    settings = trained.with_overrides(api_keys=KEYS, rate_limit_storage=redis_url, audit_log=root / "audit.jsonl")
    with fraudpipe_serve(settings, free_port(), root / "server.log", workers=2) as server:
        yield server, settings


def test_assessment_runs_black_box_over_http_against_the_deployed_service(deployed, tmp_path):
    server, _ = deployed
    findings = assess(server.url, KEYS[2:12], tmp_path, "127.0.2.0/24", pdf=True)
    for finding_id in ("CRIT-1", "MED-1"):
        assert findings[finding_id]["status"] == "Held", (finding_id, findings[finding_id]["tests"])
    for finding_id in ("CRIT-2", "HIGH-1"):
        assert findings[finding_id]["status_code"] == "control_verified_residual_remains", finding_id
    assert findings["HIGH-3"]["status"] == "OPEN (residual risk)"
    assert findings["HIGH-4"]["status"] not in ("OPEN", "Not run", "Error")
    assert findings["HIGH-2"]["status"] == "Not assessed"
    context = findings["_assessment"]["context"]
    assert context["mode"] == "black-box over HTTP" and context["budget_plan"]["keys"] == 10
    text = "\n".join(p.extract_text() for p in PdfReader(tmp_path / "security-assessment.pdf").pages)
    assert server.url in text and "black-box" in text and "was trained in this run" not in text


def test_one_key_against_hardened_fraudpipe_reports_nothing_falsely(deployed, tmp_path):
    """The README's one-key run once ended "NOT READY: HIGH-1 open" on a correct limit."""
    server, _ = deployed
    findings = assess(server.url, [KEYS[12]], tmp_path, "127.0.3.0/24")
    statuses = {fid: findings[fid]["status"] for fid in (*BLACK_BOX, "HIGH-3", "HIGH-4")}
    assert "OPEN" not in statuses.values() and statuses["CRIT-1"] == "Held", statuses
    flood = next(t for t in findings["HIGH-1"]["tests"] if "test_automated_queries" in t["nodeid"])
    assert flood["outcome"] == "skipped" and "budget" in flood["message"], flood


LOAN_KEYS = tuple(f"loan-key-{i:02d}" for i in range(16))


@contextlib.contextmanager
def _loan_service(build: str, log: Path):
    """The test-only loan scorer (not fraudpipe) under gunicorn on loopback, limit 30 per minute."""
    port = free_port()
    env = {**os.environ, "LOAN_API_KEYS": ",".join(LOAN_KEYS), "LOAN_RATE_LIMIT": "30",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
               f"tests.targets.loan_service:create_app({build!r})"]
    with serve(command, env, port, log) as server:
        yield server


@pytest.fixture(scope="module", params=["weak", "strong"])
def loan_service(request, tmp_path_factory):
    with _loan_service(request.param, tmp_path_factory.mktemp("loan") / "server.log") as server:
        yield request.param, server


def test_a_key_smuggled_in_the_query_string_is_found_over_http(tmp_path):
    """A service that also takes its token as ``?token=`` was once reported CRIT-1 fixed: only the in-process
    CRIT-1 smuggled the key. Live, the whole family runs."""
    with _loan_service("strong-query-token", tmp_path / "server.log") as server:
        found = assess(server.url, LOAN_KEYS[:4], tmp_path / "out", "127.0.8.0/24", LOAN_PROFILE,
                       suite="security_tests/test_crit1_authentication.py")
    crit1 = found["CRIT-1"]
    assert crit1["status_code"] == "open", crit1["tests"]
    smuggled = [t for t in crit1["tests"] if t["outcome"] == "failed"]
    assert any("smuggled: query ?token=" in t["evidence"]["details"]["answered_without_the_key"] for t in smuggled)


def test_a_parser_that_picks_one_reading_of_an_ambiguous_body_is_found_over_http(tmp_path):
    """Strict fields behind a lax JSON parser (duplicate keys, BOMs, UTF-16/32) were once MED-1 fixed live: only
    the in-process MED-1 sent ambiguous bodies. Live, the range edges and the parser confusion run too."""
    with _loan_service("strong-lax-json", tmp_path / "server.log") as server:
        found = assess(server.url, LOAN_KEYS[:4], tmp_path / "out", "127.0.40.0/24", LOAN_PROFILE,
                       suite="security_tests/test_med1_input_validation.py")
    med1 = found["MED-1"]
    assert med1["status_code"] == "open", med1["tests"]
    failed = {t["nodeid"].split("::")[1].split("[")[0]: t["evidence"]["details"] for t in med1["tests"]
              if t["outcome"] == "failed"}
    assert set(failed) == {"test_ambiguous_encodings_duplicates_and_deep_nesting_get_a_json_4xx"}, med1["tests"]
    assert {"duplicate key, last one wins", "UTF-16 with BOM"} <= set(
        failed["test_ambiguous_encodings_duplicates_and_deep_nesting_get_a_json_4xx"]["not_refused"])


def test_black_box_findings_are_called_right_on_another_service(loan_service, tmp_path):
    """Many keys (the strong build's run under ``-n 2``: the plan must be the same on both workers), then one
    key, which may assess less but must never call open what the many-key run found fixed."""
    build, server = loan_service
    xdist = ("-n", "2", "--expected-rate-limit", "30") if build == "strong" else ()
    many = assess(server.url, LOAN_KEYS[:14], tmp_path / "many", f"127.0.{4 if build == 'weak' else 5}.0/24",
                  LOAN_PROFILE, extra=xdist)
    expected = {"open"} if build == "weak" else {"held", "control_verified_residual_remains"}
    assert all(many[fid]["status_code"] in expected for fid in BLACK_BOX), many["_stdout"][-2000:]
    for finding_id in ("HIGH-3", "HIGH-4"):
        assert many[finding_id]["status"] not in ("Not run", "Error", "Not assessed"), many[finding_id]["tests"]
    assert many["_assessment"]["context"]["target_name"] == "loan-default scorer (test target)"
    # the weak build's one-key run needs only what it asserts on (CRIT-1, CRIT-2); the strong build's all
    one_key_suite = (("security_tests/test_crit1_authentication.py", "security_tests/test_crit2_score_exposure.py")
                     if build == "weak" else "security_tests")
    one = assess(server.url, LOAN_KEYS[14:15], tmp_path / "one", f"127.0.{6 if build == 'weak' else 7}.0/24",
                 LOAN_PROFILE, suite=one_key_suite)
    for finding_id, finding in many.items():
        if finding_id.startswith("_"):
            continue
        if finding["status_code"] in ("held", "control_verified_residual_remains", "not_reproduced"):
            assert one[finding_id]["status"] != "OPEN", (finding_id, one[finding_id]["tests"])
    if build == "weak":
        assert one["CRIT-1"]["status"] == one["CRIT-2"]["status"] == "OPEN"


def test_a_remote_target_is_refused_without_the_explicit_flag():
    result = subprocess.run([sys.executable, "-m", "pytest", "security_tests", "--target-url", "http://192.0.2.1:8000",
                             "-p", "no:cacheprovider", "--co", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "not a loopback address" in result.stderr + result.stdout


def _statuses_from(url: str, key: str, total: int, source: str) -> dict[int, int]:
    """8 concurrent clients from one loopback address of their own: every path counts against an
    address, so one the harness polled /health from would start with less than the full budget."""
    local = threading.local()

    def one(_: int) -> int:
        if not hasattr(local, "client"):
            local.client = HttpClient(url, api_key=key, source_address=source)
        return local.client.predict(FRAUD_EXAMPLE).status

    with ThreadPoolExecutor(8) as pool:
        return dict(Counter(pool.map(one, range(total))))


def test_redis_storage_holds_one_limit_across_two_workers(deployed):
    server, settings = deployed
    measured = _statuses_from(server.url, KEYS[13], 300, source="127.0.9.1")  # no other test uses either
    assert len(server.worker_pids()) == 2
    assert measured == {200: 100, 429: 200}, measured


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


def test_two_workers_sharing_redis_let_no_boundary_burst_through(trained, redis_url, tmp_path):
    """The assessment's boundary burst through gunicorn: both workers count in one sliding log."""
    settings = trained.with_overrides(api_keys=KEYS, rate_limit_storage=redis_url, rate_limit="10/second",
                                      audit_log=None)
    with fraudpipe_serve(settings, free_port(), tmp_path / "server.log", workers=2) as server:
        measured = boundary_burst(HttpClient(server.url, api_key=KEYS[0]), FRAUD_EXAMPLE, 10, 1.0)
    statuses = measured.details["statuses"]
    assert measured.measurements["most_answers_in_one_window"] == 10 and statuses.get(429, 0) > 0, measured
    assert not any(status >= 500 for status in statuses), measured


def test_redis_going_down_gives_503_with_retry_after_never_500_or_unlimited(trained, tmp_path):
    with contextlib.ExitStack() as redis_running:
        url = redis_running.enter_context(redis_server())
        settings = trained.with_overrides(api_keys=KEYS, rate_limit_storage=url, audit_log=tmp_path / "audit.jsonl")
        with fraudpipe_serve(settings, free_port(), tmp_path / "server.log", workers=2) as server:
            client = HttpClient(server.url, api_key=KEYS[0])
            assert client.predict(FRAUD_EXAMPLE).status == 200
            redis_running.close()
            down = [client.predict(FRAUD_EXAMPLE) for _ in range(6)] + [client.get("/health")]
    assert {answer.status for answer in down} == {503}, [answer.status for answer in down]
    assert all(answer.body["error"] == "rate_limit_unavailable" and int(answer.headers["Retry-After"]) >= 1
               for answer in down)
    assert [r["status"] for r in read_records(settings.audit_log)][-7:] == [503] * 7
