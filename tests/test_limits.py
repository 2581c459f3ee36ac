"""The limiter: the sliding log in memory and in Redis, one round trip per request, no boundary burst,
limits before authentication, and refusal (503) when the shared counts cannot be read."""

from __future__ import annotations

import bisect
import time

import pytest

from fraudpipe import create_app
from fraudpipe.serving.audit import read_records
from fraudpipe.serving.ratelimit_store import MemoryLog, Rate, RedisLog, StoreUnavailable
from security_tests.servers import free_port, redis_available, redis_monitor

GOOD = {"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}
needs_redis = pytest.mark.skipif(not redis_available(), reason="redis-server not installed (.ci/run installs it)")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def most_in_one_window(times: list[float], window: float) -> int:
    """The largest number of times inside any half-open interval of one window's length."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


def test_memory_log_answers_the_limit_then_says_exactly_when_the_next_is_allowed():
    clock = FakeClock()
    log = MemoryLog(Rate.parse("3/minute"), clock=clock)
    assert [log.acquire(["addr:a"]) for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 20
    assert log.acquire(["addr:a"]) == pytest.approx(40.0)
    clock.now += 39.9
    assert log.acquire(["addr:a"]) == pytest.approx(0.1)
    clock.now += 0.1
    assert log.acquire(["addr:a"]) == 0.0


def test_a_refusal_on_one_identity_records_nothing_on_the_other():
    clock = FakeClock()
    log = MemoryLog(Rate.parse("2/second"), clock=clock)
    assert log.acquire(["addr:a", "key:k"]) == log.acquire(["addr:a", "key:k"]) == 0.0
    assert log.acquire(["addr:b", "key:k"]) > 0
    assert log.acquire(["addr:b"]) == log.acquire(["addr:b"]) == 0.0


@pytest.mark.parametrize("spacing_ms", [10, 50, 130, 330])
def test_memory_log_never_lets_more_than_the_limit_into_one_window(spacing_ms):
    """A fixed window answers 2x the limit around its boundary; the sliding log never exceeds it."""
    clock = FakeClock()
    log = MemoryLog(Rate.parse("10/second"), clock=clock)
    answered = []
    for tick in range(4000 // spacing_ms):
        clock.now = 1000 + tick * spacing_ms / 1000
        if log.acquire(["addr:a"]) == 0.0:
            answered.append(tick * spacing_ms)
    assert most_in_one_window(answered, 1000) == min(10, -(-1000 // spacing_ms))


def test_memory_log_forgets_idle_identities():
    clock = FakeClock()
    log = MemoryLog(Rate.parse("5/second"), clock=clock)
    log.SWEEP_EVERY = 10
    for index in range(10):
        log.acquire([f"addr:{index}"])
        clock.now += 0.2
    assert len(log._logs) < 10


@needs_redis
def test_redis_log_shares_the_same_algorithm_and_costs_one_round_trip(redis_url):
    log = RedisLog(Rate.parse("5/second"), redis_url, prefix=f"t{time.monotonic_ns()}:")
    log.client.script_flush()
    assert log.acquire(["warm-up"]) == 0.0
    with redis_monitor(redis_url) as counts:
        waits = [log.acquire(["addr:a", "key:k"]) for _ in range(8)]
    assert waits[:5] == [0.0] * 5 and all(0 < wait <= 1.0 + log.lease for wait in waits[5:])
    assert set(counts["client"]) == {"evalsha"} and counts["client"]["evalsha"] <= 8, counts
    assert log.ready() is None


@needs_redis
def test_redis_log_has_no_boundary_burst(redis_url):
    """Sent and received times bracket the moment Redis decided: a count that fits between the first
    send and the last receipt is certainly inside one window."""
    log = RedisLog(Rate.parse("10/second"), redis_url, prefix=f"b{time.monotonic_ns()}:")
    brackets = []
    started = time.monotonic()
    while time.monotonic() - started < 2.3:
        sent = time.monotonic()
        if log.acquire(["addr:a"]) == 0.0:
            brackets.append((sent, time.monotonic()))
        time.sleep(0.003)
    certain = max(sum(1 for _, received in brackets[i:] if received - sent < 1.0)
                  for i, (sent, _) in enumerate(brackets))
    assert certain <= 10 and len(brackets) >= 20


@needs_redis
def test_a_busy_client_is_served_from_leases_without_exceeding_the_limit(redis_url):
    """Two workers sharing one Redis, one client alternating between them as fast as it can: slots come
    in batches (far fewer round trips than answers), yet exactly the limit is answered and no more."""
    prefix = f"l{time.monotonic_ns()}:"
    workers = [RedisLog(Rate.parse("300/minute"), redis_url, prefix=prefix) for _ in range(2)]
    with redis_monitor(redis_url) as counts:
        waits = [workers[i % 2].acquire(["addr:a", "key:k"]) for i in range(600)]
    assert waits.count(0.0) == 300 and all(0 < wait <= 60 + workers[0].lease for wait in waits if wait)
    grants = counts["lua"]["lpush"] / 2  # one LPUSH per identity per grant
    assert grants < 300 / 10, counts


@needs_redis
def test_leased_slots_are_stamped_at_the_end_of_their_lease(redis_url):
    """The stamp is what keeps a late-used slot inside the window it is counted in: a grant stamped at
    its own time would let a slot used ``lease`` later fall out of the count ``lease`` too early."""
    prefix = f"e{time.monotonic_ns()}:"
    log = RedisLog(Rate.parse("1000/minute"), redis_url, prefix=prefix)
    redis_time = lambda: (lambda s, us: s * 1_000_000 + us)(*log.client.time())  # noqa: E731
    before = redis_time()
    answered = sum(log.acquire(["addr:a"]) == 0.0 for _ in range(30))
    after = redis_time()
    stamps = [int(stamp) for stamp in log.client.lrange(prefix + "addr:a", 0, -1)]
    lease = round(log.lease * 1_000_000)
    assert answered == 30 and 30 <= len(stamps) < 60
    assert all(before + lease <= stamp <= after + lease for stamp in stamps), (before, after, stamps[:3])


@needs_redis
def test_a_lease_is_not_used_after_its_period(redis_url, monkeypatch):
    log = RedisLog(Rate.parse("1000/minute"), redis_url, prefix=f"v{time.monotonic_ns()}:")
    trips = []
    real_trip = log._round_trip
    monkeypatch.setattr(log, "_round_trip", lambda *args: trips.append(args[2]) or real_trip(*args))
    for _ in range(10):
        log.acquire(["addr:a"])
    assert len(trips) < 10 and log._local.leases[("addr:a",)].remaining > 0
    later = time.monotonic() + log.lease * 1.01
    monkeypatch.setattr("fraudpipe.serving.ratelimit_store.time.monotonic", lambda: later)
    held = len(trips)
    assert log.acquire(["addr:a"]) == 0.0 and len(trips) == held + 1


@needs_redis
def test_a_slow_client_goes_to_redis_every_time(redis_url):
    """A client below one request per lease period holds no slots it might not use."""
    log = RedisLog(Rate.parse("1000/minute"), redis_url, prefix=f"s{time.monotonic_ns()}:")
    log.acquire(["addr:warm-up"])
    time.sleep(log.lease * 1.2)
    with redis_monitor(redis_url) as counts:
        for _ in range(5):
            assert log.acquire(["addr:a"]) == 0.0
            time.sleep(log.lease * 1.2)
    assert counts["client"] == {"evalsha": 5}, counts


def test_redis_down_is_unavailable_not_unlimited():
    log = RedisLog(Rate.parse("5/second"), f"redis://127.0.0.1:{free_port()}", timeout=0.2)
    with pytest.raises(StoreUnavailable):
        log.acquire(["addr:a"])
    assert "unreachable" in log.ready()
    with pytest.raises(StoreUnavailable, match="moments ago"):
        log.acquire(["addr:a"])


@pytest.fixture
def app_with(trained, tmp_path, assessor_key):
    def build(controls_off=(), **overrides):
        settings = trained.with_overrides(audit_log=tmp_path / "audit.jsonl", **overrides)
        app = create_app("hardened", settings=settings, controls_off=controls_off)
        return app, app.test_client()

    return build


def test_redis_down_gives_503_with_retry_after_and_an_audit_record(app_with, assessor_key, tmp_path):
    app, client = app_with(rate_limit_storage=f"redis://127.0.0.1:{free_port()}")
    response = client.post("/predict", json=GOOD, headers={"X-API-Key": assessor_key})
    assert response.status_code == 503 and response.json["error"] == "rate_limit_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert client.get("/health").status_code == 503
    records = read_records(tmp_path / "audit.jsonl")
    assert [r["status"] for r in records][:1] == [503]
    reasons = [check() for check in app.extensions["fraudpipe"].readiness_checks]
    assert any(reason and "unreachable" in reason for reason in reasons)


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong-key"}], ids=["no key", "wrong key"])
def test_requests_without_a_valid_key_are_limited_before_auth(app_with, headers):
    _, client = app_with(rate_limit="3/minute")
    statuses = [client.post("/predict", json=GOOD, headers=headers).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


def test_every_path_counts_against_the_address(app_with, assessor_key):
    _, client = app_with(rate_limit="4/minute")
    statuses = [client.get("/health").status_code, client.get("/openapi.json").status_code,
                client.get("/no-such-path").status_code, client.post("/predict", json=GOOD, headers={
                    "X-API-Key": assessor_key}).status_code]
    refused = client.get("/health")
    assert statuses == [200, 200, 404, 200] and refused.status_code == 429
    assert refused.json["error"] == "too_many_requests" and 1 <= int(refused.headers["Retry-After"]) <= 60


def test_one_key_from_two_addresses_shares_one_budget(app_with, assessor_key):
    _, client = app_with(rate_limit="3/minute")
    statuses = [client.post("/predict", json=GOOD, headers={"X-API-Key": assessor_key},
                            environ_base={"REMOTE_ADDR": f"198.51.100.{i}"}).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


@needs_redis
def test_the_limiter_costs_at_most_one_redis_round_trip_per_request(app_with, assessor_key, redis_url):
    """Both budgets (key and address) in one EVALSHA; a client sending fast is served from leased slots,
    so answered requests cost well under one Redis command each (the monitor, measured below, is off)."""
    _, client = app_with(controls_off=("monitor",), rate_limit="1000/minute", rate_limit_storage=redis_url)
    client.post("/predict", json=GOOD, headers={"X-API-Key": assessor_key})
    with redis_monitor(redis_url) as counts:
        statuses = [client.post("/predict", json=GOOD, headers={"X-API-Key": assessor_key}).status_code
                    for _ in range(40)]
    assert statuses == [200] * 40
    assert set(counts["client"]) == {"evalsha"} and counts["client"]["evalsha"] <= 40, counts
    commands = sum(counts["client"].values()) + sum(counts["lua"].values())
    assert commands / 40 <= 2, counts


def test_the_shared_monitor_costs_one_round_trip_per_answer(app_with, assessor_key, redis_url):
    """Every answered /predict is ordered into the shared history before it leaves: one EVALSHA each (plus
    the limiter's leased calls); the PRADA distance is pushed without waiting, until the client is flagged."""
    _, client = app_with(rate_limit="1000/minute", rate_limit_storage=redis_url)
    client.post("/predict", json=GOOD, headers={"X-API-Key": assessor_key})
    with redis_monitor(redis_url) as counts:
        statuses = [client.post("/predict", json=GOOD, headers={"X-API-Key": assessor_key}).status_code
                    for _ in range(40)]
    assert statuses == [200] * 40
    assert 40 <= counts["client"]["evalsha"] <= 80, counts
    assert set(counts["client"]) <= {"evalsha", "eval", "append", "pexpire"}, counts  # eval: a script Redis had not yet seen
    assert counts["client"]["append"] <= 40, counts


def test_workers_of_one_host_share_the_monitor_without_a_round_trip(trained, tmp_path, assessor_key, redis_url):
    """Under ``serve`` the workers of a host order answers in the table they all map: no monitor command
    reaches Redis; only the limiter's leased calls do, and they count the hosts serving the deployment."""
    import redis

    from fraudpipe.serving.server import host_monitor_for

    redis.Redis.from_url(redis_url).flushall()
    settings = trained.with_overrides(audit_log=tmp_path / "audit.jsonl", rate_limit="1000/minute",
                                      rate_limit_storage=redis_url)
    app = create_app("hardened", settings=settings, host_monitor=host_monitor_for(settings, "hardened"))
    client = app.test_client()
    client.post("/predict", json=GOOD, headers={"X-API-Key": assessor_key})
    with redis_monitor(redis_url) as counts:
        statuses = [client.post("/predict", json={**GOOD, "amount": 10.0 + i}, headers={"X-API-Key": assessor_key})
                    .status_code for i in range(40)]
    assert statuses == [200] * 40
    assert set(counts["client"]) <= {"evalsha", "eval", "hello"}, counts  # eval: a script Redis had not yet seen
    assert counts["client"]["evalsha"] + counts["client"]["eval"] <= 40, counts
    assert not {"hincrby", "append", "getrange"} & set(counts["lua"]), counts  # the monitor's script never ran
    assert counts["lua"]["xadd"] >= 1  # this sweep of amount raised alerts: each went to the deployment's stream
    assert app.extensions["fraudpipe"].rate_store.hosts == 1


def test_the_limiter_counts_the_hosts_serving_the_deployment(redis_url):
    """A second host's call is seen by the first host's next call: from then on its answers are ordered
    through Redis, where both hosts' histories meet (``monitor_host``)."""
    prefix = f"h{time.monotonic_ns()}:"
    first, second = (RedisLog(Rate.parse("1000/minute"), redis_url, prefix=prefix, host_id=name) for name in "ab")
    first.acquire(["addr:192.0.2.1"])
    assert first.hosts == 1
    second.acquire(["addr:192.0.2.2"])
    first.acquire(["addr:192.0.2.3"])
    assert first.hosts == second.hosts == 2


def test_a_host_that_stopped_is_not_counted_by_the_host_started_in_its_place(redis_url):
    """A red-team pass found every restart within the minute counted the stopped host as a second one:
    the new host then ordered every answer in Redis for as long as it ran. ``serve`` makes its host leave once
    its workers have stopped."""
    prefix = f"r{time.monotonic_ns()}:"
    stopped, started = (RedisLog(Rate.parse("1000/minute"), redis_url, prefix=prefix, host_id=name) for name in "ab")
    stopped.acquire(["addr:192.0.2.1"])
    stopped.leave()
    started.acquire(["addr:192.0.2.1"])
    assert started.hosts == 1


def test_ipv6_addresses_in_one_slash_64_share_one_budget(app_with):
    """An IPv6 host usually holds a whole /64: rotating through it must not buy a new budget."""
    _, client = app_with(rate_limit="3/minute")
    sources = [f"2001:db8:1:2::{i:x}" for i in range(1, 6)]
    statuses = [client.post("/predict", json=GOOD, headers={"X-API-Key": "wrong"},
                            environ_base={"REMOTE_ADDR": source}).status_code for source in sources]
    other_net = client.post("/predict", json=GOOD, environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"})
    mapped = [client.post("/predict", json=GOOD, environ_base={"REMOTE_ADDR": address}).status_code
              for address in ("192.0.2.9", "::ffff:192.0.2.9", "192.0.2.9", "::ffff:192.0.2.9")]
    assert statuses == [401, 401, 401, 429, 429] and other_net.status_code == 401
    assert mapped == [401, 401, 401, 429]
