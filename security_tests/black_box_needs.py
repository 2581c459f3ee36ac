"""What each black-box test spends, from the profile: the input to the query plan (``budget.py``)."""

from __future__ import annotations

from security_tests.targets.profile import TargetProfile
from security_tests.attacks.black_box_access import SCORE_PROBE_SHIFTS, malformed_queries
from security_tests.attacks.black_box_limits import BYPASS_PROBES, flood_extra
from security_tests.attacks.openapi_fuzz import OPENAPI_EXAMPLES
from security_tests.budget import Need


def need_for(finding_id: str, profile: TargetProfile) -> Need | None:
    limit = profile.rate_limit
    if finding_id == "CRIT-2":
        probes = min(8, 2 * len(SCORE_PROBE_SHIFTS) * len(profile.fields))
        return Need("CRIT-2", 4 + probes, 4 + probes, why="both examples twice and varied inputs")
    if finding_id == "MED-1":
        queries = malformed_queries(profile) + (1 + OPENAPI_EXAMPLES if profile.openapi_path else 0)
        return Need("MED-1", queries, queries, why="one per malformed input, and the OpenAPI fuzz when documented")
    if finding_id == "HIGH-1":
        if limit is None:
            return Need("HIGH-1")
        return Need("HIGH-1", 0, BYPASS_PROBES, fresh=1, fresh_queries=limit + flood_extra(limit) + BYPASS_PROBES,
                    keyless=BYPASS_PROBES,
                    why=f"{limit + flood_extra(limit)} requests on an untouched window")
    return None
