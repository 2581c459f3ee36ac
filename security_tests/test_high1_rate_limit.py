"""HIGH-1 — no rate limit on the predict path: a flood on an untouched window, then the same key from
elsewhere and another key from the same address; wrong and missing keys from one address; a burst across a
window boundary; slots granted before a pause; rotating keys, addresses, the addresses of one IPv6 /64 and
spellings of one address; in-process counts with two workers; the documented default in force; slow-header
and slow-body connections (slowloris) held open while plain requests must still be answered, against real
servers on loopback (``serve``, where it must be blocked, and gunicorn's sync worker as the acquired service
was deployed, where it must succeed). In-process each runs inherited, hardened and hardened without
``rate_limit`` (with the limiter's memory and Redis storage); the flood and the key guessing also run against
a live target."""

import contextlib

import pytest
from limits import parse_many

from fraudpipe.serving.ratelimit_store import Rate, RedisLog

from security_tests.attacks.client import FlaskClient, HttpClient
from security_tests.attacks.rate_limit import (RULE_LISTS, boundary_burst, default_limit, flood, flood_extra,
                                               guess_keys, lapsing_leases, pause_then_burst, rotate_identities,
                                               storage_outage, workers_counting_alone)
from security_tests.attacks.slow_clients import slow_clients
from security_tests.contract import expect_attack
from security_tests.documented import documented_defaults, left_unset, per_window
from security_tests.markers import runs
from security_tests.misconfiguration import as_deployed, deploy
from security_tests.servers import fraudpipe_serve, free_port, gunicorn_direct, redis_available, redis_server
from security_tests.target import live_target
from security_tests.targets.profile import fraudpipe_target

PROFILE = fraudpipe_target()
LIMIT = 100
STORAGES = ["memory", "redis"]
SERVERS = {"serve": False, "gunicorn-sync-as-acquired": True}  # server -> whether the attack should succeed


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Both storages in-process; a live target's storage is its own, so it runs once."""
    if "storage" in metafunc.fixturenames:
        metafunc.parametrize("storage", ["memory"] if live_target(metafunc.config) else STORAGES)
    if "server" in metafunc.fixturenames:
        metafunc.parametrize("server", ["live"] if live_target(metafunc.config) else list(SERVERS))


@pytest.fixture
def storage_settings(request, storage):
    """The limiter's storage as deployed with several workers (Redis, leased slots) or one (memory), each
    starting with empty counts."""
    if storage == "memory":
        return {}
    import redis

    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushall()
    return {"rate_limit_storage": url}


@pytest.mark.finding("HIGH-1")
@runs(flood)
def test_automated_queries_are_cut_off_at_the_limit(variant, target, evidence, storage_settings):
    reach = target(rate_limit=f"{LIMIT}/minute", **storage_settings)
    found = evidence.record(flood(reach.fresh(), reach.same_key_elsewhere(), reach.other_key_same_address(),
                                  reach.profile))
    expect_attack(variant, found)
    limit, extra = found.measurements["limit"], flood_extra(found.measurements["limit"])
    if not variant.attack_should_succeed and not reach.live:  # several workers leasing slots refuse a little early
        assert found.measurements["answered"] == limit
        assert found.details["statuses"].get(429) == extra
        assert found.measurements["first_refused_at"] == limit + 1 and int(found.details["retry_after"]) > 0
    elif variant.attack_should_succeed:
        assert found.measurements["answered"] == limit + extra


BURST_LIMIT, BURST_WINDOW = 10, 1.0


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("needs a short window (10/second) in the service's settings")
@runs(boundary_burst)
def test_no_window_boundary_lets_a_burst_through(variant, start_service, evidence, storage_settings):
    client = start_service(variant, rate_limit=f"{BURST_LIMIT}/second", **storage_settings)
    found = evidence.record(boundary_burst(client, PROFILE.positive_example, BURST_LIMIT, BURST_WINDOW))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["most_answers_in_one_window"] == BURST_LIMIT
        refused = found.details["first_refusal"]
        assert found.details["statuses"].get(429, 0) > 0 and int(refused["retry_after"]) >= 1


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("needs a short window (10/second) in the service's settings")
@runs(pause_then_burst)
def test_slots_granted_before_a_pause_are_not_spent_after_it(variant, start_service, evidence, storage_settings):
    client = start_service(variant, rate_limit=f"{BURST_LIMIT}/second", **storage_settings)
    found = evidence.record(pause_then_burst(client, PROFILE.positive_example, BURST_LIMIT, BURST_WINDOW))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["most_answers_in_one_window"] == BURST_LIMIT


@pytest.mark.finding("HIGH-1")
@runs(guess_keys)
def test_wrong_or_missing_keys_from_one_address_are_cut_off_at_the_limit(variant, target, evidence,
                                                                         storage_settings):
    reach = target(rate_limit=f"{LIMIT}/minute", **storage_settings)
    found = evidence.record(guess_keys(reach.keyless(), reach.profile))
    expect_attack(variant, found)
    if not variant.attack_should_succeed and not reach.live:  # several workers leasing slots refuse a little early
        allowed = found.measurements["allowed"]
        assert found.measurements["guesses_checked"] == allowed
        assert found.details["statuses"].get(429) == flood_extra(allowed)
        refused = found.details["first_refusal"]
        assert refused["at"] == allowed + 1 and int(refused["retry_after"]) >= 1


ROTATION_LIMIT = 20
ROTATION_KEYS = tuple(f"rotation-key-{i}-x7Qp2mZk" for i in range(5))


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("needs several valid keys and source addresses for one test")
@pytest.mark.parametrize("rotate", ["keys from one address", "addresses with one key", "keys from one IPv6 /64"])
@runs(rotate_identities)
def test_rotating_keys_or_addresses_does_not_buy_a_second_budget(variant, start_service, rotate, storage_settings,
                                                                 evidence):
    """An IPv6 host is routinely handed a whole /64: a key per address of it must not be a budget per address."""
    keys = list(ROTATION_KEYS[:4])
    client = start_service(variant, rate_limit=f"{ROTATION_LIMIT}/minute", api_keys=tuple(keys), **storage_settings)
    if rotate == "keys from one address":
        clients = [(f"key {i}", FlaskClient(client.app, api_key=key)) for i, key in enumerate(keys)]
    elif rotate == "keys from one IPv6 /64":
        addresses = [f"2001:db8:5:7:{i:x}::{i + 1}" for i in range(len(keys))]
        clients = [(address, FlaskClient(client.app, api_key=key, remote_addr=address))
                   for address, key in zip(addresses, keys)]
    else:
        if not variant.attack_should_succeed and not variant.control_on("auth"):
            pytest.skip("auth is broken: without keys the address is the only identity to count (CRIT-1)")
        clients = [(f"198.51.100.{i}", FlaskClient(client.app, api_key=keys[0], remote_addr=f"198.51.100.{i}"))
                   for i in range(4)]
    found = evidence.record(rotate_identities(clients, PROFILE.positive_example, ROTATION_LIMIT, per_identity=ROTATION_LIMIT))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["answered"] == ROTATION_LIMIT


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("needs a trusted proxy in the service's settings")
@runs(rotate_identities)
def test_one_address_behind_a_proxy_cannot_spread_over_spellings_of_itself(variant, start_service, storage_settings,
                                                                          evidence):
    """Behind a trusted proxy the address comes from X-Forwarded-For: a port, the IPv4-mapped form or a
    value that is no address at all must not open a new budget."""
    client = start_service(variant, rate_limit=f"{ROTATION_LIMIT}/minute", trusted_proxies=1, api_keys=ROTATION_KEYS,
                           **storage_settings)
    spellings = ["203.0.113.5", "203.0.113.5:1", "203.0.113.5:2", "::ffff:203.0.113.5", "junk"]
    clients = [(name, FlaskClient(client.app, api_key=key, remote_addr="203.0.113.5", forwarded_for=name))
               for name, key in zip(spellings, ROTATION_KEYS)]
    found = evidence.record(rotate_identities(clients, PROFILE.positive_example, ROTATION_LIMIT, per_identity=ROTATION_LIMIT))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["answered"] == ROTATION_LIMIT


@pytest.mark.white_box("builds the service in-process with the rate limit left at its default")
@pytest.mark.finding("HIGH-1")
@runs(default_limit)
def test_the_documented_default_limit_is_in_force_when_nothing_is_set(variant, trained, service_app, storage_settings,
                                                                     evidence):
    limit = per_window(documented_defaults()["rate_limit"])
    client = service_app(variant, left_unset(trained, "rate_limit").with_overrides(**storage_settings))
    found = evidence.record(default_limit(client, PROFILE, limit))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        statuses = found.details["in_order"]
        assert found.measurements["answered"] == limit and statuses[limit:] == [429] * 10


@pytest.mark.white_box("starts the service in-process with rate-limit rule lists an operator could write")
@pytest.mark.finding("HIGH-1")
@pytest.mark.parametrize("rule", RULE_LISTS)
@runs(default_limit)
def test_a_rule_list_is_refused_at_start_or_its_tightest_rule_holds(variant, trained, service_app, rule,
                                                                   storage_settings, evidence):
    """``FRAUDPIPE_RATE_LIMIT`` with two rules: a limiter that silently keeps one of them (the first, say)
    answers far more than the operator meant. Refused at start, the operator writes the tightest rule."""
    tightest = min(item.amount for item in parse_many(rule))
    client, refusal = deploy(lambda **o: service_app(variant, trained.with_overrides(audit_log=None, **storage_settings,
                                                                                     **o)),
                             {"rate_limit": rule}, {"rate_limit": f"{tightest}/minute"})
    found = evidence.record(default_limit(client, PROFILE, tightest,
                                          setting=as_deployed(f"rate limit {rule!r}", refusal)))
    found.details["refused_at_start"] = refusal
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["answered"] == tightest


@pytest.fixture
def own_redis():
    """A redis-server this test alone uses (and may stop), and a way to stop it mid-attack."""
    if not redis_available():
        pytest.skip("redis-server not installed (.ci/run installs it)")
    import redis

    with redis_server() as url:
        def stop() -> None:
            with contextlib.suppress(redis.exceptions.ConnectionError):
                redis.Redis.from_url(url).shutdown(nosave=True)
        yield url, stop


OUTAGE_LIMIT = 20


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("stops the service's rate-limit storage (Redis) in the middle of a flood")
@runs(storage_outage)
def test_a_storage_outage_mid_flood_refuses_with_503_and_never_answers_above_the_limit(variant, start_service,
                                                                                       own_redis, evidence):
    url, stop = own_redis
    client = start_service(variant, rate_limit=f"{OUTAGE_LIMIT}/minute", rate_limit_storage=url)
    found = evidence.record(storage_outage(client, PROFILE, OUTAGE_LIMIT, stop, before=OUTAGE_LIMIT // 2,
                                           after=2 * OUTAGE_LIMIT))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.details["refused_without_503_and_retry_after"] == []
        lease = RedisLog(Rate.parse(f"{OUTAGE_LIMIT}/minute"), url).lease
        assert (found.measurements["last_answer_after_outage_s"] or 0) <= lease, "only slots leased before the outage"


LEASE_LIMIT = 50


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("needs a short window (50/second) and the service's Redis storage")
@runs(lapsing_leases)
def test_leases_that_lapse_half_used_neither_overcount_nor_starve_the_client(variant, start_service, redis_url,
                                                                            evidence):
    import redis

    redis.Redis.from_url(redis_url).flushall()
    client = start_service(variant, rate_limit=f"{LEASE_LIMIT}/second", rate_limit_storage=redis_url)
    found = evidence.record(lapsing_leases(client, PROFILE.positive_example, LEASE_LIMIT, 1.0))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        shortfall = LEASE_LIMIT - found.measurements["fewest_answers_in_a_whole_window"]
        assert shortfall <= found.details["largest_burst"], f"starved by {shortfall}: more than one lease held back"


WORKERS_LIMIT = 60


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("starts the service with in-process rate-limit storage and two workers")
@runs(workers_counting_alone)
def test_in_process_limit_storage_with_two_workers_does_not_multiply_the_limit(server, trained, assessor_key,
                                                                              evidence, tmp_path):
    """``memory://`` counts in each worker: ``serve`` must refuse it with two workers (the operator then starts
    one, as the error says); gunicorn started directly, as the service was acquired, counts twice."""
    settings = trained.with_overrides(rate_limit=f"{WORKERS_LIMIT}/minute", rate_limit_storage="memory://",
                                      audit_log=tmp_path / "audit.jsonl")

    def start(workers: int):
        log = tmp_path / f"server-{workers}.log"
        return (fraudpipe_serve(settings, free_port(), log, workers=workers) if server == "serve"
                else gunicorn_direct(settings, free_port(), log, workers=workers, preload=True))

    with contextlib.ExitStack() as stack:
        try:
            running, refusal = stack.enter_context(start(2)), None
        except RuntimeError as exc:
            running, refusal = stack.enter_context(start(1)), str(exc).splitlines()[-1]
        if refusal is None and server == "serve":  # every worker accepting before the burst
            running.client_per_worker(lambda: HttpClient(running.url, api_key=assessor_key), 2)
        found = evidence.record(workers_counting_alone(running.url, PROFILE.positive_example, assessor_key,
                                                       WORKERS_LIMIT, requests=4 * WORKERS_LIMIT))
    found.summary = f"{as_deployed('memory:// storage with 2 workers', refusal)}: {found.summary}"
    found.details["refused_at_start"] = refusal
    assert found.attack_succeeded is SERVERS[server], found.summary
    if server == "serve":
        assert refusal and "would each count" in refusal, refusal


@pytest.mark.finding("HIGH-1")
@runs(slow_clients)
def test_slow_clients_cannot_hold_every_worker(server, request, trained, evidence, tmp_path):
    live = live_target(request.config)
    if live is not None:
        evidence.record(slow_clients(live.url, live.profile))
        return
    settings = trained.with_overrides(client_timeout=2, audit_log=tmp_path / "audit.jsonl")
    start = (fraudpipe_serve(settings, free_port(), tmp_path / "server.log", workers=1) if server == "serve"
             else gunicorn_direct(settings, free_port(), tmp_path / "server.log", workers=1))
    with start as running:
        found = evidence.record(slow_clients(running.url, fraudpipe_target()))
    assert found.attack_succeeded is SERVERS[server], found.summary
    if not found.attack_succeeded:
        assert found.measurements["slow_header_conns_still_open"] == 0, found.summary
        assert found.measurements["slow_body_conns_still_open"] == 0, found.summary
