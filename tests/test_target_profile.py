"""Target profiles and the query plan, without a server."""

from dataclasses import replace
from pathlib import Path

import pytest

from fraudpipe.errors import ConfigError
from security_tests.targets.profile import (FRAUDPIPE_SOURCE, BadInput, draft_from_openapi, fraudpipe_profile,
                                            load_profile, profile_from_dict)
from security_tests.budget import Need, make_plan, plan_order, source_addresses
from security_tests.targets.__main__ import main as draft_main

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_fraudpipe_profile_equals_the_one_built_from_the_schema():
    shipped = load_profile(ROOT / "security_tests" / "targets" / "fraudpipe.toml")
    assert replace(shipped, source=FRAUDPIPE_SOURCE) == fraudpipe_profile("http://127.0.0.1:8000")


def test_an_excluded_minimum_is_never_sent_and_is_tried_as_out_of_range():
    amount = fraudpipe_profile().fields[0]
    assert amount.exclusive_min and not amount.contains(0.0) and amount.clip(-5) > 0


def test_draft_from_openapi_leaves_todo_so_it_cannot_be_loaded_unfilled(tmp_path):
    document = {"info": {"title": "scorer"}, "paths": {"/score": {"post": {"requestBody": {"content": {
        "application/json": {"schema": {"properties": {"x": {"type": "number", "exclusiveMinimum": 0, "maximum": 5},
                                                       "n": {"type": "integer", "minimum": 1, "maximum": 9}}}}}}}}}}
    draft = draft_from_openapi(document, "http://127.0.0.1:9")
    assert 'predict_path = "/score"' in draft and "exclusive_min = true" in draft
    (tmp_path / "p.toml").write_text(draft)
    with pytest.raises(ConfigError, match="response.label is still TODO.*examples.negative is still TODO"):
        load_profile(tmp_path / "p.toml")


NEEDS = [Need("CRIT-1", 1, 1, keyless=12), Need("CRIT-2", 12, 12), Need("MED-1", 25, 25),
         Need("HIGH-1", 0, 3, fresh=1, fresh_queries=39, keyless=3), Need("HIGH-4", 60, 100, fresh=1, fresh_queries=30),
         Need("HIGH-3", 9, 60)]


def _plan(keys: int, wait: bool = False):
    return make_plan(NEEDS, keys, 30, 60, True, wait, 600, source_addresses("127.0.1.0/24", 40))


def test_one_key_never_hands_a_spent_window_to_a_test_that_needs_a_whole_one():
    plan = _plan(1)
    assert "budget" in plan.allocations["HIGH-1"].reason and "budget" in plan.allocations["HIGH-4"].reason
    used = sum(s.queries for a in plan.allocations.values() for s in a.slices)
    assert used <= 30


def test_many_keys_give_fresh_windows_their_own_key_and_every_slice_its_own_address():
    plan = _plan(10)
    assert all(a.assessed for a in plan.allocations.values())
    fresh = {a.test: a.fresh[0].key_index for a in plan.allocations.values() if a.fresh}
    shared_keys = {s.key_index for a in plan.allocations.values() for s in a.shared}
    assert not set(fresh.values()) & shared_keys and len(set(fresh.values())) == 2
    addresses = [s.address for a in plan.allocations.values() for s in a.slices]
    assert len(addresses) == len(set(addresses))


def test_a_serial_run_may_wait_for_later_windows_and_says_which():
    plan = _plan(1, wait=True)
    assert plan.allocations["HIGH-1"].fresh[0].window >= 1 and plan.windows_used > 1


def test_plan_is_the_same_on_every_worker():
    assert _plan(3).as_dict() == _plan(3).as_dict()


def test_profile_needs_a_positive_label():
    with pytest.raises(ConfigError, match="response.positive"):
        profile_from_dict({"features": {"x": {"type": "bool"}}, "response": {"label": "y"},
                           "examples": {"positive": {"x": 1}, "negative": {"x": 0}}})


def test_a_serial_run_waits_for_the_keys_window_to_reset_before_a_later_window(monkeypatch):
    import time

    from security_tests.attacks.client import Answer
    from security_tests.budget import Slice
    from security_tests.contract import BudgetSpent
    from security_tests.target import BudgetedClient, LiveTarget

    profile = replace(load_profile(ROOT / "tests" / "targets" / "loan_service.toml"), rate_window="second")
    target = LiveTarget("http://127.0.0.1:9", profile, ["k"], True, can_wait=True, max_wait=10, network="127.0.1.0/24")
    sent = []

    class Fake:
        def predict(self, payload, headers=None, **kwargs):
            sent.append(time.monotonic())
            return Answer(200, {"result": {"decision": "DENY"}}, {}, profile)

    monkeypatch.setattr(target, "http", lambda key, address: Fake())
    client = BudgetedClient(target, [Slice(0, "127.0.1.1", 2, 0), Slice(0, "127.0.1.2", 1, 1)])
    for _ in range(3):
        assert client.predict({}).positive
    assert sent[2] - sent[1] >= profile.window_seconds + 0.9
    with pytest.raises(BudgetSpent):
        client.predict({})


@pytest.fixture
def openapi_url():
    """fraudpipe's own OpenAPI document served on a free loopback port by a stdlib server."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from fraudpipe.serving.app import create_app

    document = create_app("inherited").test_client().get("/openapi.json").get_data()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = document if self.path == "/openapi.json" else json.dumps([]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_profile_draft_from_openapi_names_every_field_and_leaves_the_unknowns_todo(tmp_path, openapi_url, capsys):
    from fraudpipe.data import FEATURE_NAMES

    out = tmp_path / "draft.toml"
    assert draft_main(["draft", "--from-openapi", f"{openapi_url}/openapi.json", "--out", str(out)]) == 0
    draft = out.read_text()
    assert all(f"[features.{name}]" in draft for name in FEATURE_NAMES) and 'label = "TODO"' in draft
    assert draft_main(["draft", "--from-openapi", f"{openapi_url}/openapi.json", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("url, message", [("http://192.0.2.1/openapi.json", "not a loopback address"),
                                          ("ftp://127.0.0.1/x", "must be an http(s) URL")])
def test_profile_draft_refuses_remote_and_odd_urls_in_one_line(tmp_path, url, message, capsys):
    assert draft_main(["draft", "--from-openapi", url]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_profile_draft_refuses_a_document_that_is_not_openapi(tmp_path, openapi_url, capsys):
    assert draft_main(["draft", "--from-openapi", f"{openapi_url}/other"]) == 4
    assert "OpenAPI" in capsys.readouterr().err


def _claims(**changes) -> dict:
    """A nested-body profile answering a numeric label, as tests/targets/claims_service.toml is."""
    data = {"request": {"body": {"claim": {}, "channel": "api"}},
            "response": {"label": "results.0.decision", "positive": 1},
            "features": {"amount": {"type": "float", "min": 0, "max": 10, "path": "claim.amount"},
                         "age": {"type": "int", "min": 18, "max": 99, "path": "claim.age", "attacker_controls": False}},
            "examples": {"positive": {"amount": 9, "age": 20}, "negative": {"amount": 1, "age": 50}}}
    for key, value in changes.items():
        data[key] = value
    return data


def test_features_go_to_their_path_in_the_body_template_and_a_label_is_read_through_a_list():
    profile = profile_from_dict(_claims())
    assert profile.body({"amount": 9.0, "age": 20, "extra": 1}) == {
        "claim": {"amount": 9.0, "age": 20, "extra": 1}, "channel": "api"}
    assert profile.label_of({"results": [{"decision": 1}]}) == 1 and profile.label_of({"results": []}) is None
    assert profile.is_positive(1) and not profile.is_positive(True) and not profile.is_positive(0)
    assert [f.attacker_controls for f in profile.fields] == [True, False]
    flat = fraudpipe_profile()
    assert flat.body(flat.positive_example) is flat.positive_example


def test_hostile_grey_box_sections_are_refused_in_one_line_naming_every_problem(tmp_path):
    (tmp_path / "text").write_text("not a program")
    data = _claims(audit={"log": str(tmp_path), "status": "status"},
                   artifacts={"folder": str(tmp_path / "missing"), "verify": "python -m verify {folder}"},
                   environment={"requirements": str(tmp_path / "none.txt"), "python": str(tmp_path / "text")},
                   ratelimit={})
    with pytest.raises(BadInput) as refused:
        profile_from_dict(data, source="p.toml")
    message = str(refused.value)
    assert "\n" not in message
    for problem in ("unknown key ratelimit", "artifacts.verify must be a command as a list of text",
                    f"audit.log {tmp_path} is a folder", "artifacts.folder", "is not a folder",
                    "environment.requirements", f"environment.python {tmp_path / 'text'} is not a program"):
        assert problem in message, message


def test_a_todo_anywhere_in_a_body_template_or_a_command_refuses_the_profile(tmp_path):
    data = _claims(request={"body": {"claim": {}, "channel": ["TODO"]}},
                   artifacts={"folder": str(tmp_path), "verify": ["python", "TODO", "{folder}"]})
    with pytest.raises(BadInput, match="request.body is still TODO; artifacts.verify is still TODO"):
        profile_from_dict(data)


def test_a_feature_path_through_a_constant_is_refused():
    data = _claims(request={"body": {"claim": "fixed"}})
    with pytest.raises(BadInput, match="goes through a constant"):
        profile_from_dict(data)


def test_an_optional_part_is_planned_last_so_a_short_budget_drops_it_first():
    """Naming openapi_path once left MED-1's range edges not assessed (budget): the fuzz took the room first."""
    needs = [Need("MED-1 fuzz", 21, 21, optional=True, why="openapi"), Need("MED-1 edges", 25, 25),
             Need("CRIT-2", 10, 10)]
    plan = make_plan(sorted(needs, key=plan_order), 1, 40, 60, True, False, 0, source_addresses("127.0.1.0/24", 20))
    assert plan.allocations["MED-1 edges"].assessed and plan.allocations["CRIT-2"].assessed
    assert "budget" in plan.allocations["MED-1 fuzz"].reason


def test_range_violations_measured_before_the_limit_cut_in_are_kept():
    """A window spent mid-way once turned every range violation already found into "not assessed (budget)"."""
    from security_tests.attacks.client import Answer
    from security_tests.attacks.input_validation import probe_range_edges
    from security_tests.contract import NotAssessed

    profile = fraudpipe_profile()

    class NoValidationThenLimited:
        sent = 0

        def predict(self, payload=None, headers=None, raw_body=None, **_):
            self.sent += 1
            if self.sent > 10:
                return Answer(429, {"error": "rate_limited"}, {}, profile)
            return Answer(200, {"label": "FRAUD"}, {}, profile)

    try:
        found = probe_range_edges(NoValidationThenLimited(), profile)
    except NotAssessed as exc:  # the plugin would turn it into a skip; here it is the bug
        pytest.fail(f"the measured violations were thrown away: {exc}")
    assert found.attack_succeeded and found.measurements["rate_limited"] > 0, found.summary
    assert "rate-limited, not measured" in found.summary


def test_a_draft_carries_the_request_shape_the_label_path_and_the_documents_routes():
    import tomllib

    claim = {"type": "object", "properties": {"amount": {"type": "number", "minimum": 0, "maximum": 9},
                                              "police_report": {"type": "boolean"}}}
    answer = {"type": "object", "properties": {"results": {"type": "array", "items": {
        "type": "object",
        "properties": {"decision": {"type": "integer", "enum": [0, 1]}, "model": {"type": "string"}}}}}}
    document = {"paths": {"/healthz": {"get": {}}, "/claims": {"post": {
        "requestBody": {"content": {"application/json": {"schema": {"properties": {
            "claim": claim, "channel": {"type": "string", "enum": ["api"]}}}}}},
        "responses": {"200": {"content": {"application/json": {"schema": answer}}}}}}}}
    draft = tomllib.loads(draft_from_openapi(document, "http://127.0.0.1:9", document_path="/docs/openapi.json"))
    assert (draft["health_path"], draft["openapi_path"]) == ("/healthz", "/docs/openapi.json")
    assert draft["request"]["body"] == {"channel": "api", "claim": {}}
    assert draft["features"]["amount"]["path"] == "claim.amount" and draft["features"]["police_report"] == {
        "type": "bool", "path": "claim.police_report"}
    assert draft["response"]["label"] == "results.0.decision" and draft["response"]["positive"] == "TODO"
