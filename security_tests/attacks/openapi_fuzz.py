"""MED-1: the service's own OpenAPI document, driven by schemathesis.

schemathesis generates valid and invalid requests for every documented operation from the document the
service serves, and checks each answer: no 5xx, a documented status, a body that matches the documented
schema, invalid requests refused with a 4xx and valid ones answered. A library built for this finds the cases a hand-written list forgets.
"""

from __future__ import annotations

from dataclasses import replace

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from security_tests.contract import Evidence

OPENAPI_EXAMPLES = 20
"""Generated requests per operation against a live target: counted in its query budget."""
_CHECKS = ("not_a_server_error", "status_code_conformance", "response_schema_conformance",
           "content_type_conformance", "negative_data_rejection", "positive_data_acceptance")


def _checks():
    from schemathesis import checks

    return [getattr(checks, name) for name in _CHECKS if hasattr(checks, name)]


def fuzz_openapi(schema, headers: dict, examples: int = 150, only_path: str | None = None, shrink: bool = True,
                 **call) -> Evidence:
    """Every operation in ``schema`` (``schemathesis.openapi.from_wsgi`` or ``from_url``), with valid and
    invalid requests alike; the first failure per operation is kept (hypothesis shrinks it)."""
    failures, sent = [], [0]
    operations = [op.ok() for op in schema.get_all_operations() if only_path in (None, op.ok().path)]
    phases = list(Phase) if shrink else [Phase.explicit, Phase.generate]  # live: no extra shrinking requests
    for operation in operations:
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True, phases=phases,
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(*(operation.as_strategy(mode) for mode in schemathesis.GenerationMode)))
        def run(case) -> None:
            sent[0] += 1
            case.call_and_validate(headers=headers, checks=_checks(), **call)

        try:
            run()
        except (AssertionError, HypothesisException, BaseExceptionGroup) as failure:
            failures.append({"operation": f"{operation.method.upper()} {operation.path}",
                             "failure": _describe(failure)})
    return Evidence(
        attack_succeeded=bool(failures), queries=sent[0],
        summary=(f"schemathesis sent {sent[0]} generated requests to {len(operations)} documented operations; "
                 + (f"{len(failures)} operation(s) failed: "
                    + "; ".join(f"{f['operation']}: {f['failure']}" for f in failures) if failures
                    else "every answer was a documented status with a conforming body, no 5xx")),
        measurements={"operations": len(operations), "failing_operations": len(failures)},
        details={"failures": failures, "checks": list(_CHECKS)})


def _describe(failure: BaseException) -> str:
    """schemathesis groups what it found (FailureGroup, a BaseExceptionGroup); name each failure once."""
    found = [str(e).strip().splitlines()[0] for e in getattr(failure, "exceptions", [failure])]
    return "; ".join(dict.fromkeys(found))[:300]


def wsgi_schema(app):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def fuzz_live_openapi(budgeted, profile) -> Evidence:
    """The target's own document, fetched once, then ``OPENAPI_EXAMPLES`` requests to its predict path,
    over one budget slice's session (its key and source address)."""
    client = budgeted.reserve(1 + OPENAPI_EXAMPLES)
    schema = schemathesis.openapi.from_url(f"{client.target}{profile.openapi_path}", timeout=10)
    found = fuzz_openapi(schema, client.credentials(), examples=OPENAPI_EXAMPLES, only_path=profile.predict_path,
                         shrink=False, base_url=client.target, session=client.session)
    return replace(found, queries=found.queries + 1)
