"""The residual-risk attacks (HIGH-3, HIGH-4) against targets written only to be hard to measure: what they
cannot measure is *inconclusive* with what was tried, and their queries come from the profile alone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from security_tests.attacks.client import Answer
from security_tests.attacks.evasion import positive_rows, search_box
from security_tests.attacks.extraction import Labeller, extraction, informative_rows
from security_tests.contract import Inconclusive
from security_tests.targets.profile import fraudpipe_target, load_profile
from security_tests.servers import ROOT

LOAN = ROOT / "tests" / "targets" / "loan_service.toml"


class RareTarget:
    """Answers the positive label to the positive example exactly and to nothing else, as a service whose
    positive class is rare in its ranges answers random inputs."""

    target = "rare"

    def __init__(self, profile) -> None:
        self.profile, self.sent = profile, []

    def predict(self, payload=None, headers=None, **kwargs) -> Answer:
        self.sent.append(payload)
        label = self.profile.positive if payload == self.profile.positive_example else "OTHER"
        body: dict = {}
        node = body
        for part in self.profile.label_path[:-1]:
            node = node.setdefault(part, {})
        node[self.profile.label_path[-1]] = label
        return Answer(200, body, {}, self.profile)


def test_held_out_answers_of_one_label_are_inconclusive_with_what_was_tried():
    profile = load_profile(LOAN)
    with pytest.raises(Inconclusive, match=r"not assessed \(inconclusive\).*100 held-out queries \(.*around the examples.*; 0 boundary points"):
        extraction(RareTarget(profile), RareTarget(profile), profile, 30, 100)


def test_the_samples_reach_both_labels_where_uniform_rows_see_one():
    """A loan scorer that denies few: around, between and along the boundary of the two examples both
    labels occur, though uniform rows over the ranges are nearly all approved."""
    profile = load_profile(LOAN)

    class Linear(RareTarget):
        def predict(self, payload=None, headers=None, **kwargs) -> Answer:
            answer = super().predict(payload)
            deny = payload["open_accounts"] > 8 and payload["income"] < 60_000
            answer.body["result"]["decision"] = "DENY" if deny else "APPROVE"
            return answer

    labeller = Labeller(Linear(profile), profile)
    informative_rows(labeller, 100, seed=1)
    assert labeller.sent == 100 and 20 <= sum(labeller.labels) <= 80, labeller.chosen
    assert {"along the boundary", "around the examples", "uniform over the typical ranges"} <= set(labeller.chosen)


def test_the_evasion_search_box_is_the_profiles_typical_range():
    """One HopSkipJump harness once searched transactions_24h up to 100 where the schema says 40 is typical."""
    profile = fraudpipe_target()
    low, high = search_box(profile)
    assert dict(zip(profile.field_names, high.tolist()))["transactions_24h"] == 40
    assert all(profile.fields[i].contains(v) for row in positive_rows(profile) for i, v in enumerate(profile.vector(row)))
    untyped = replace(profile, fields=tuple(replace(f, typical=None) for f in profile.fields))
    assert search_box(untyped)[1].tolist() == [f.highest for f in profile.fields]
