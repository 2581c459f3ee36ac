"""What each black-box test spends, from the profile: the input to the query plan (``budget.py``)."""

from __future__ import annotations

from security_tests.targets.profile import TargetProfile
from security_tests.attacks.black_box_evasion import evasion_queries
from security_tests.budget import Need

HOLDOUT = (60, 100)
UNPROMISED_WINDOW = 100


def need_for(finding_id: str, profile: TargetProfile) -> Need | None:
    limit = profile.rate_limit
    if finding_id == "HIGH-4":
        if limit is None:
            return Need("HIGH-4", UNPROMISED_WINDOW + HOLDOUT[0], UNPROMISED_WINDOW + HOLDOUT[1])
        return Need("HIGH-4", *HOLDOUT, fresh=1, fresh_queries=limit,
                    why=f"an untouched window of {limit} for the extractor and {HOLDOUT[0]}+ held-out labels")
    if finding_id == "HIGH-3":
        return Need("HIGH-3", *evasion_queries(profile), why="the positive example and both ends of every feature")
    return None
