import pytest

from security_tests.attacks.client import FlaskClient
from security_tests.attacks.extraction import flood_and_extract
from fraudpipe.data import FRAUD_EXAMPLE
from security_tests.attacks.flooding import boundary_burst, guess_keys, pause_then_burst, rotate_identities
from security_tests.contract import expect_attack

LIMIT = 100
STORAGES = ["memory", "redis"]


@pytest.fixture
def storage_settings(request, storage):
    """The limiter's storage as deployed with several workers (Redis, leased slots) or one (memory), each
    starting with empty counts."""
    if storage == "memory":
        return {}
    if request.getfixturevalue("variant").live:
        pytest.skip("a live target's storage is its own")
    import redis

    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushall()
    return {"rate_limit_storage": url}


@pytest.mark.finding("HIGH-1")
@pytest.mark.parametrize("storage", STORAGES)
def test_automated_queries_are_cut_off_at_the_limit(variant, start_service, holdout, evidence, storage_settings):
    client = start_service(variant, rate_limit=f"{LIMIT}/minute", **storage_settings)
    X, victim_labels = holdout
    found = evidence.record(flood_and_extract(client, 500, X, victim_labels, allowed=LIMIT))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["answered"] == LIMIT
        assert found.details["statuses"].get(429) == 500 - LIMIT
        assert found.measurements["first_refused_at"] == LIMIT + 1 and int(found.details["retry_after"]) > 0
    else:
        assert found.measurements["answered"] == 500


BURST_LIMIT, BURST_WINDOW = 10, 1.0


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("needs a short window (10/second) in the service's settings")
@pytest.mark.parametrize("storage", STORAGES)
def test_no_window_boundary_lets_a_burst_through(variant, start_service, evidence, storage_settings):
    client = start_service(variant, rate_limit=f"{BURST_LIMIT}/second", **storage_settings)
    found = evidence.record(boundary_burst(client, FRAUD_EXAMPLE, BURST_LIMIT, BURST_WINDOW))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["most_answers_in_one_window"] == BURST_LIMIT
        refused = found.details["first_refusal"]
        assert found.details["statuses"].get(429, 0) > 0 and int(refused["retry_after"]) >= 1


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("needs a short window (10/second) in the service's settings")
@pytest.mark.parametrize("storage", STORAGES)
def test_slots_granted_before_a_pause_are_not_spent_after_it(variant, start_service, evidence, storage_settings):
    client = start_service(variant, rate_limit=f"{BURST_LIMIT}/second", **storage_settings)
    found = evidence.record(pause_then_burst(client, FRAUD_EXAMPLE, BURST_LIMIT, BURST_WINDOW))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["most_answers_in_one_window"] == BURST_LIMIT


@pytest.mark.finding("HIGH-1")
@pytest.mark.parametrize("storage", STORAGES)
def test_wrong_or_missing_keys_from_one_address_are_cut_off_at_the_limit(variant, start_service, evidence,
                                                                         storage_settings):
    client = start_service(variant, rate_limit=f"{LIMIT}/minute", **storage_settings)
    found = evidence.record(guess_keys(client, FRAUD_EXAMPLE, allowed=LIMIT, guesses=LIMIT + 50))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["guesses_checked"] == LIMIT and found.details["statuses"].get(429) == 50
        refused = found.details["first_refusal"]
        assert refused["at"] == LIMIT + 1 and int(refused["retry_after"]) >= 1


ROTATION_LIMIT = 20
ROTATION_KEYS = tuple(f"rotation-key-{i}-x7Qp2mZk" for i in range(5))


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("needs several valid keys and source addresses for one test")
@pytest.mark.parametrize("rotate", ["keys from one address", "addresses with one key"])
def test_rotating_keys_or_addresses_does_not_buy_a_second_budget(variant, start_service, rotate, evidence):
    keys = list(ROTATION_KEYS[:4])
    client = start_service(variant, rate_limit=f"{ROTATION_LIMIT}/minute", api_keys=tuple(keys))
    if rotate == "keys from one address":
        clients = [(f"key {i}", FlaskClient(client.app, api_key=key)) for i, key in enumerate(keys)]
    else:
        if not variant.attack_should_succeed and not variant.control_on("auth"):
            pytest.skip("auth is broken: without keys the address is the only identity to count (CRIT-1)")
        clients = [(f"198.51.100.{i}", FlaskClient(client.app, api_key=keys[0], remote_addr=f"198.51.100.{i}"))
                   for i in range(4)]
    found = evidence.record(rotate_identities(clients, FRAUD_EXAMPLE, ROTATION_LIMIT, per_identity=ROTATION_LIMIT))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["answered"] == ROTATION_LIMIT


@pytest.mark.finding("HIGH-1")
@pytest.mark.white_box("needs a trusted proxy in the service's settings")
def test_one_address_behind_a_proxy_cannot_spread_over_spellings_of_itself(variant, start_service, evidence):
    """Behind a trusted proxy the address comes from X-Forwarded-For: a port, the IPv4-mapped form or a
    value that is no address at all must not open a new budget."""
    client = start_service(variant, rate_limit=f"{ROTATION_LIMIT}/minute", trusted_proxies=1, api_keys=ROTATION_KEYS)
    spellings = ["203.0.113.5", "203.0.113.5:1", "203.0.113.5:2", "::ffff:203.0.113.5", "junk"]
    clients = [(name, FlaskClient(client.app, api_key=key, remote_addr="203.0.113.5", forwarded_for=name))
               for name, key in zip(spellings, ROTATION_KEYS)]
    found = evidence.record(rotate_identities(clients, FRAUD_EXAMPLE, ROTATION_LIMIT, per_identity=ROTATION_LIMIT))
    expect_attack(variant, found)
    if not variant.attack_should_succeed:
        assert found.measurements["answered"] == ROTATION_LIMIT
