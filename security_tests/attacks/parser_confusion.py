"""MED-1: bodies two JSON parsers read differently, or that exhaust a recursive parser under the size cap.

Each is sent as application/json; a hardened service answers every one with a JSON 4xx. A 200 means the
service picked one reading of an ambiguous body (a WAF or log reader may have picked another); a 5xx
means the parser crashed.
"""

from __future__ import annotations

import json

from fraudpipe.data import LEGITIMATE_EXAMPLE
from security_tests.attacks.client import Client
from security_tests.attacks.malformed import refusal_evidence
from security_tests.contract import Evidence

_TEXT = json.dumps(LEGITIMATE_EXAMPLE)
CASES = [
    ("nested 2,000 deep (4 KB)", b"[" * 2000 + b"]" * 2000, "application/json"),
    ("duplicate key, last one wins", _TEXT[:-1].encode() + b', "hour_of_day": 2}', "application/json"),
    ("UTF-16 with BOM", _TEXT.encode("utf-16"), "application/json"),
    ("UTF-32 with BOM", _TEXT.encode("utf-32"), "application/json"),
    ("UTF-8 BOM", b"\xef\xbb\xbf" + _TEXT.encode(), "application/json"),
    ("invalid UTF-8 in a key", _TEXT[:-1].encode() + b', "m\xff": 1}', "application/json"),
    ("lone surrogate escape", _TEXT[:-1].encode() + b', "\\ud800": 1}', "application/json"),
    ("charset=utf-16 declared", _TEXT.encode(), "application/json; charset=utf-16"),
]


def send_ambiguous(client: Client) -> Evidence:
    results = []
    for name, raw, content_type in CASES:
        answer = client.predict(raw_body=raw, content_type=content_type)
        results.append({"case": name, "status": answer.status, "json_error": isinstance(answer.body, dict),
                        "response": answer.body})
    return refusal_evidence(results, lambda r: 400 <= r["status"] < 500 and r["json_error"],
                            "ambiguous or parser-exhausting bodies refused with a JSON 4xx")
