"""What a profile says the service promises changes what is judged: a feature the attacker cannot change is
never moved by evasion, and a limit promised per address is not called broken by the same key from elsewhere.
In-process, against stand-in clients whose answers are a function of the request."""

from __future__ import annotations

from dataclasses import replace

import pytest

from security_tests.attacks.client import Answer
from security_tests.attacks.evasion import boundary_search, candidates
from security_tests.attacks.rate_limit import flood, guess_keys
from security_tests.attacks.score_exposure import score_fields
from security_tests.contract import NotAssessed
from security_tests.targets.profile import TargetProfile, profile_from_dict


def _profile(age_controlled: bool = False, scope: str = "both") -> TargetProfile:
    return profile_from_dict({
        "request": {"body": {"claim": {}}}, "response": {"label": "results.0.decision", "positive": 1},
        "rate_limit": {"requests": 5, "per": "minute", "scope": scope},
        "features": {"amount": {"type": "float", "min": 0, "max": 100, "path": "claim.amount"},
                     "age": {"type": "int", "min": 18, "max": 99, "path": "claim.age",
                             "attacker_controls": age_controlled}},
        "examples": {"positive": {"amount": 50, "age": 60}, "negative": {"amount": 50, "age": 20}}})


class Stand:
    """Answers ``decide(claim)`` in the profile's shape; ``budget`` answers, then 429."""

    def __init__(self, profile: TargetProfile, decide=lambda claim: 1, budget: int = 10**9) -> None:
        self.profile, self.decide, self.budget, self.sent = profile, decide, budget, []

    def predict(self, payload=None, headers=None, **_):
        body = self.profile.body(payload)
        self.sent.append(body)
        if len(self.sent) > self.budget:
            return Answer(429, {"error": "slow down"}, {}, self.profile)
        return Answer(200, {"results": [{"decision": self.decide(body["claim"])}]}, {}, self.profile)


def by_age(claim: dict) -> int:
    return int(claim["age"] > 30)


def test_evasion_moves_only_the_features_the_attacker_controls():
    fixed = _profile(age_controlled=False)
    client = Stand(fixed, by_age)
    found = boundary_search(client, fixed)
    assert found["change"] is None and {body["claim"]["age"] for body in client.sent} == {60}
    assert all("age" not in change for _, change in candidates(fixed, fixed.positive_example))
    controlled = _profile(age_controlled=True)
    assert boundary_search(Stand(controlled, by_age), controlled)["change"] == {"age": 30}, "the plant must be found"


@pytest.mark.parametrize("scope, bypass_counts", [("both", True), ("address", False)])
def test_a_limit_promised_per_address_is_not_judged_by_the_same_key_from_elsewhere(scope, bypass_counts):
    profile = _profile(scope=scope)
    found = flood(Stand(profile, budget=5), Stand(profile), Stand(profile, budget=0), profile)
    assert found.attack_succeeded is bypass_counts, found.summary
    assert ("not promised" in found.summary) is not bypass_counts


def test_a_limit_promised_per_key_leaves_wrong_keys_from_one_address_unjudged():
    with pytest.raises(NotAssessed, match="per key only"):
        guess_keys(Stand(_profile(scope="key")), _profile(scope="key"))


def test_the_score_field_the_profile_names_is_exposed_whatever_it_holds():
    """A percentage reads as no fraction; named in ``[response] score`` it is the field CRIT-2 checks."""
    profile = _profile()
    answer = Answer(200, {"results": [{"decision": 1, "risk": 87}]}, {}, profile)
    assert score_fields(answer, profile) == {}
    named = replace(profile, score_path=("results", "0", "risk"))
    assert score_fields(answer._replace(profile=named), named) == {"body.results[0].risk": 87}
