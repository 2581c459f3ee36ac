"""``POST /predict`` is answered by ``predict_route`` without Flask's request machinery; every answer it
gives (status line, headers, body bytes), and every record it writes, must be the one Flask's route gives
for the same request. The cases below include what a red-team pass found to differ: a Host that werkzeug's
routing refuses (the direct route had answered it 200), the status line's reason text, DEL in an error."""

import io
import json

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from fraudpipe import create_app
from fraudpipe.serving.audit import read_records
from fraudpipe.serving.predict_route import PredictRoute

GOOD = {"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}
VARIABLE = ("request_id", "ts", "latency_ms")


def requests() -> dict:
    """Fresh each time: a stream is read once."""
    return {
        "good": dict(json=GOOD),
        "fraud": dict(json={"amount": 800.0, "hour_of_day": 2, "transactions_24h": 20, "foreign_transaction": 1}),
        "out of range": dict(json={**GOOD, "hour_of_day": 99}),
        "string feature": dict(json={**GOOD, "amount": "abc"}),
        "missing field": dict(json={"amount": 1.0}),
        "extra field": dict(json={**GOOD, "debug": 1}),
        "not an object": dict(json=[1, 2, 3]),
        "malformed": dict(data=b'{"amount": ', content_type="application/json"),
        "duplicate key": dict(data=json.dumps(GOOD)[:-1] + ', "amount": 9}', content_type="application/json"),
        "form body": dict(data="amount=1", content_type="application/x-www-form-urlencoded"),
        "wrong charset": dict(data=json.dumps(GOOD), content_type="application/json; charset=latin-1"),
        "declared too large": dict(data=json.dumps(GOOD), content_type="application/json",
                                   environ_overrides={"CONTENT_LENGTH": "99999999"}),
        "chunked": dict(input_stream=io.BytesIO(json.dumps(GOOD).encode()), content_type="application/json",
                        environ_overrides={"wsgi.input_terminated": True}),
        "empty": dict(data=b"", content_type="application/json"),
        "no key": dict(json=GOOD, headers={"X-API-Key": ""}),
        "wrong key": dict(json=GOOD, headers={"X-API-Key": "not-a-key"}),
        "NaN": dict(data=json.dumps(GOOD).replace("42.5", "NaN"), content_type="application/json"),
        "DEL in a field name": dict(data=json.dumps({**GOOD, "x\x7f": 1}), content_type="application/json"),
        "U+2028 in a field name": dict(data=json.dumps({**GOOD, "x\u2028": 1}, ensure_ascii=False).encode(),
                                       content_type="application/json"),
        "label too long in Host": dict(json=GOOD, headers={"Host": "a" * 64 + ":8000"}),
        "empty label in Host": dict(json=GOOD, headers={"Host": "a..b"}),
        "WebSocket scheme": dict(json=GOOD, environ_overrides={"wsgi.url_scheme": "ws"}),
    }


def _answers(app, key: str, flask_only: bool) -> list:
    target = app.wsgi_app.flask_wsgi if flask_only else app.wsgi_app
    assert isinstance(app.wsgi_app, PredictRoute)
    client = Client(target, Response)
    answers = []
    for name, request in requests().items():
        headers = {"X-API-Key": key, **request.get("headers", {})}
        response = client.post("/predict", **{**request, "headers": headers})
        request_id = response.headers.get("X-Request-ID", "")
        raw = response.get_data().replace(request_id.encode(), b"<id>") if request_id else response.get_data()
        headers = sorted((k, v) for k, v in response.headers.items() if k != "X-Request-ID")
        answers.append((name, response.status, raw, headers, bool(request_id)))
    return answers


@pytest.mark.parametrize("profile", ["inherited", "hardened"])
def test_the_direct_route_answers_and_records_exactly_as_flasks_route(profile, trained, tmp_path, assessor_key):
    runs = {}
    for flask_only in (False, True):
        log = tmp_path / f"audit-{flask_only}.jsonl"
        app = create_app(profile, settings=trained.with_overrides(audit_log=log, rate_limit="10000/minute"))
        answers = _answers(app, assessor_key, flask_only)
        records = [{k: v for k, v in record.items() if k not in VARIABLE} for record in read_records(log)]
        runs[flask_only] = answers, records
    direct, flask = runs[False], runs[True]
    for ours, theirs in zip(direct[0], flask[0]):
        assert ours == theirs
    assert direct[1] == flask[1]
    statuses = {name: int(status[:3]) for name, status, *_ in direct[0]}
    assert statuses["good"] == 200 and statuses["label too long in Host"] == statuses["empty label in Host"] == 400
    assert len(set(statuses.values())) >= (4 if profile == "inherited" else 6)
    assert (len(direct[1]) == len(requests())) == (profile == "hardened")  # only hardened keeps a record


def test_options_is_a_json_405_not_an_empty_html_200(trained):
    client = create_app("hardened", settings=trained).test_client()
    for path in ("/predict", "/health", "/openapi.json"):
        response = client.open(path, method="OPTIONS")
        assert response.status_code == 405 and response.is_json and response.headers["Allow"]


def test_a_record_holding_u2028_is_read_back_whole(tmp_path):
    """orjson writes U+2028 and U+0085 unescaped (valid JSON); a reader splitting on them would cut the record
    in two and drop both halves, hiding that request from every check that reads the log."""
    log = tmp_path / "audit.jsonl"
    log.write_bytes(b'{"status":422,"reason":"invalid field(s): x\xe2\x80\xa8"}\n{"status":404,"path":"/x\xc2\x85"}\n')
    assert [record["status"] for record in read_records(log)] == [422, 404]


def test_a_rate_limited_request_is_recorded_with_the_key_it_carried(trained, tmp_path, assessor_key):
    log = tmp_path / "audit.jsonl"
    client = create_app("hardened", settings=trained.with_overrides(audit_log=log, rate_limit="2/minute")).test_client()
    statuses = [client.post("/predict", json=GOOD, headers={"X-API-Key": assessor_key}).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert {record["key_id"] for record in read_records(log)} == {read_records(log)[0]["key_id"]} != {None}


def test_the_record_timestamp_reads_as_the_utc_isoformat_it_replaces():
    from datetime import datetime, timedelta, timezone

    from fraudpipe.serving.audit import utc_timestamp

    for _ in range(3):
        before = datetime.now(timezone.utc)
        text = utc_timestamp()
        after = datetime.now(timezone.utc)
        stamp = datetime.fromisoformat(text)
        assert len(text) == len(before.isoformat(timespec="microseconds")) and text.endswith("+00:00")
        assert before - timedelta(microseconds=1) <= stamp <= after + timedelta(microseconds=1)
