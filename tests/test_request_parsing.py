"""The hardened parser refuses, with a JSON 4xx, every body two JSON parsers could read differently;
the inherited one keeps its lax reading but never answers with a stack trace."""

import io
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fraudpipe import create_app

GOOD = {"amount": 42.5, "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}
GOOD_TEXT = json.dumps(GOOD)
DEEP = b"[" * 2000 + b"]" * 2000


@pytest.fixture
def app_for(trained, tmp_path, assessor_key):
    def build(profile="hardened", **overrides):
        settings = trained.with_overrides(audit_log=tmp_path / "audit.jsonl", rate_limit="10000/minute", **overrides)
        client = create_app(profile, settings=settings).test_client()
        client.environ_base["HTTP_X_API_KEY"] = assessor_key
        return client

    return build


@pytest.mark.parametrize("body, reason", [
    (DEEP, "nesting depth 2000"),
    (b'{"amount": ' + b"[" * 300 + b"]" * 300 + b"}", "nesting depth"),
    (GOOD_TEXT[:-1].encode() + b', "amount": 5000}', "duplicate key 'amount'"),
    (GOOD_TEXT.encode("utf-16"), "not UTF-8"),
    (GOOD_TEXT.encode("utf-32"), "not UTF-8"),
    (GOOD_TEXT.encode("utf-16-le"), "not valid JSON"),
    (b"\xef\xbb\xbf" + GOOD_TEXT.encode(), "byte order mark"),
    (GOOD_TEXT.encode()[:-1] + b', "x\xff": 1}', "not UTF-8"),
    (GOOD_TEXT.encode()[:-1] + b', "\\ud800": 1}', "lone surrogate"),
    (b'{"amount": "\\udfff", "hour_of_day": 14, "transactions_24h": 2, "foreign_transaction": 0}', "lone surrogate"),
])
def test_ambiguous_bodies_get_400_malformed_json(app_for, body, reason):
    response = app_for().post("/predict", data=body, content_type="application/json")
    assert response.status_code == 400 and response.json["error"] == "malformed_json"
    assert reason in response.json["reason"]


@pytest.mark.parametrize("content_type, status", [
    ("application/json; charset=utf-16", 415), ("application/json; charset=latin-1", 415),
    ("application/json; charset=UTF-8", 200), ("application/json; charset=utf8", 200), ("application/json", 200),
])
def test_only_utf8_charset_is_accepted(app_for, content_type, status):
    assert app_for().post("/predict", data=GOOD_TEXT, content_type=content_type).status_code == status


def test_chunked_body_over_the_cap_gets_413(app_for):
    """No Content-Length (a chunked request, as gunicorn hands it on): the cap is enforced while reading."""
    body = b'{"amount": "' + b"x" * 10_000 + b'"}'
    response = app_for().post("/predict", input_stream=io.BytesIO(body), content_type="application/json",
                              environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413 and response.json["error"] == "payload_too_large"
    small = app_for().post("/predict", input_stream=io.BytesIO(GOOD_TEXT.encode()), content_type="application/json",
                           environ_overrides={"wsgi.input_terminated": True})
    assert small.status_code == 200
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    client, huge = app_for(), _Counted(8 * 1_048_576)  # what a client streaming without end would send
    environ = EnvironBuilder("/predict", method="POST", content_type="application/json",
                             environ_base=client.environ_base).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": huge, "wsgi.input_terminated": True})
    _, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    assert status.startswith("413") and huge.sent <= 4097, (status, huge.sent)  # the cap (4096) plus one byte


class _Counted:
    """A request body of ``size`` bytes, made as it is read, counting what the service asked for."""

    def __init__(self, size: int) -> None:
        self.left, self.sent = size, 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        self.sent += n
        return b"x" * n


def test_inherited_parses_laxly_but_never_shows_a_stack_trace(app_for):
    client = app_for("inherited")
    duplicate = client.post("/predict", data=GOOD_TEXT[:-1] + ', "hour_of_day": 2}', content_type="application/json")
    assert duplicate.status_code == 200 and duplicate.json["prediction"] == 1  # last key wins, as acquired
    deep = client.post("/predict", data=DEEP, content_type="application/json")
    assert deep.status_code == 500 and deep.json["error"] == "internal_error"
    assert "Traceback" not in deep.get_data(as_text=True)


def test_chunked_bodies_through_gunicorn_are_capped_and_deep_nesting_is_400(trained, assessor_key, tmp_path):
    """The real stack: gunicorn hands a chunked body on without a Content-Length."""
    import requests

    from security_tests.servers import fraudpipe_serve, free_port

    settings = trained.with_overrides(rate_limit_storage="memory://", rate_limit="1000/minute", audit_log=None)
    headers = {"X-API-Key": assessor_key, "Content-Type": "application/json"}
    with fraudpipe_serve(settings, free_port(), tmp_path / "server.log", workers=1) as server:
        def chunks(body: bytes, size: int = 512):
            yield from (body[i:i + size] for i in range(0, len(body), size))

        big = requests.post(f"{server.url}/predict", data=chunks(b'{"amount": "' + b"x" * 20_000 + b'"}'),
                            headers=headers, timeout=10)
        small = requests.post(f"{server.url}/predict", data=chunks(GOOD_TEXT.encode(), 8), headers=headers, timeout=10)
        deep = requests.post(f"{server.url}/predict", data=DEEP, headers=headers, timeout=10)
        broken = _raw_post(server.url, assessor_key, b"zz\r\nabc\r\n0\r\n\r\n")
    assert broken.startswith(b"HTTP/1.1 400"), broken[:200]
    assert "chunked" in big.request.headers.get("Transfer-Encoding", "")
    assert big.status_code == 413 and big.json()["error"] == "payload_too_large"
    assert small.status_code == 200
    assert deep.status_code == 400 and deep.json()["error"] == "malformed_json"


def _raw_post(url: str, key: str, chunked_body: bytes) -> bytes:
    """A chunked request whose framing is broken (a chunk size that is not hex), over a raw socket."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(url)
    head = (f"POST /predict HTTP/1.1\r\nHost: {parsed.hostname}\r\nX-API-Key: {key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(head.encode() + chunked_body)
        return sock.recv(4096)


_PIECES = [b'"', b"{", b"}", b",", b":", b" ", b"\t", b"\n", b"0", b"1", b".", b"e", b"-", b"+", b"\x00", b"\xef\xbb\xbf",
           b"\xff", b"\xc3\xa9", b"NaN", b"Infinity", b"true", b"null", b"1e400", b'"amount"', b'"x"', b"\\", b"2.0",
           b"99999999999999999999", b'"hour_of_day"', b"[", b"]"]


@given(edits=st.lists(st.tuples(st.integers(0, 90), st.sampled_from(_PIECES), st.integers(0, 2), st.integers(0, 4)),
                      min_size=1, max_size=3))
@example(edits=[(len(GOOD_TEXT) - 1, b', "amount": 5000', 0, 0)])  # a duplicate key: the full path refuses it
@example(edits=[(11, b"NaN", 1, 0)])
@settings(max_examples=400, deadline=None)
def test_the_one_pass_reader_accepts_only_what_the_full_path_reads_the_same(edits):
    """The usual body is read in one pass (pydantic's JSON reader); a mutated body it accepts must be one the
    full path (the careful reader, then the model) accepts with the same row, bit for bit."""
    from fraudpipe.serving.validation import _plain_transaction, _row, loads_strict, transaction_model

    body = bytearray(GOOD_TEXT.encode())
    for position, piece, how, cut in edits:
        position = min(position, len(body))
        if how == 0:
            body[position:position] = piece
        elif how == 1:
            body[position:position + len(piece)] = piece
        else:
            del body[position:position + cut]
    one_pass = _plain_transaction(bytes(body))
    if one_pass is not None:  # else the full path reads it as before (the tests above)
        full = _row(transaction_model().model_validate(loads_strict(bytes(body))))
        assert full.tobytes() == one_pass.tobytes()
