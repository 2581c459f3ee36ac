"""Request parsing: the strict pydantic gate of the hardened profile, and the acquired service's lax one.

Both return a float64 row in schema order. The strict gate reads JSON as RFC 8259 says systems exchange
it, and refuses whatever two parsers could read differently: a body that is not UTF-8 (a BOM, UTF-16/32,
invalid bytes, a lone surrogate escape), a duplicate key (which one wins is parser-dependent), a charset
other than utf-8; nesting is bounded on the raw text before the recursive parser can exhaust the stack. The lax path keeps the seed's behaviour exactly: only
missing fields are refused (400); anything numpy can turn into a finite number passes; the rest fails
inside the model call, which the acquired service answered with a 500.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from operator import attrgetter
from typing import Annotated

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from fraudpipe.data import FEATURE_NAMES, FEATURES
from fraudpipe.serving.errors import ApiError

MAX_DEPTH = 8  # a transaction is one object; anything deeper is refused before parsing
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]")


def _whole_float_as_int(value):
    """JSON Schema's ``integer`` includes 2.0; strict mode otherwise refuses it while booleans, strings
    and fractions stay refused."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


@lru_cache(maxsize=1)
def transaction_model() -> type[BaseModel]:
    """The request model, built from the pipeline's schema so ranges are written once."""
    fields = {}
    for feature in FEATURES:
        bound = {"gt" if not feature.low_inclusive else "ge": feature.low, "le": feature.high}
        if feature.kind == "float":
            annotation = Annotated[float, Field(allow_inf_nan=False, description=feature.description, **bound)]
        else:
            annotation = Annotated[int, Field(description=feature.description, **{k: int(v) for k, v in bound.items()}),
                                   BeforeValidator(_whole_float_as_int)]
        fields[feature.name] = (annotation, ...)
    return create_model("Transaction", __config__=ConfigDict(strict=True, extra="forbid"), **fields)


def parse_strict(request, max_body_bytes: int) -> np.ndarray:
    """NaN and Infinity parse (as Python's JSON does) and are then refused as non-finite: 422 on the field."""
    body = read_body(request, max_body_bytes)
    row = _plain_transaction(body)
    if row is not None:
        return row
    data = loads_strict(body)
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_fields", "body must be a JSON object with the four features",
                       {"fields": {"<body>": f"expected an object, got {type(data).__name__}"}})
    try:
        transaction = transaction_model().model_validate(data)
    except ValidationError as exc:
        fields = {}
        for error in exc.errors(include_url=False):
            name = ".".join(str(part) for part in error["loc"]) or "<body>"
            fields.setdefault(name, error["msg"])
        raise ApiError(422, "invalid_fields", f"invalid field(s): {', '.join(sorted(fields))}",
                       {"fields": fields}) from None
    return _row(transaction)


def _plain_transaction(body: bytes) -> np.ndarray | None:
    """The usual body, read and validated in one pass by pydantic's own JSON reader: a flat object (one
    brace, no bracket, no escape) whose eight quotes are the four fields' names, each written once (that
    reader keeps the last of a duplicate key). None for anything else and for anything the model refuses:
    the full path then reads it and says what is wrong. Half the cost of reading, then validating."""
    if body.count(b'"') != 2 * len(FEATURE_NAMES) or body.count(b"{") != 1 or b"\\" in body or b"[" in body:
        return None
    try:
        transaction = transaction_model().model_validate_json(body)
    except ValidationError:
        return None
    return _row(transaction)


_FIELDS = attrgetter(*FEATURE_NAMES)


def _row(transaction: BaseModel) -> np.ndarray:
    return np.array([_FIELDS(transaction)], dtype=np.float64)


def read_body(request, max_body_bytes: int) -> bytes:
    """The body's bytes, or a 4xx: 415 media type or charset, 413 size (declared or streamed), 400 unreadable."""
    environ = request.environ
    if environ.get("CONTENT_TYPE") != "application/json":  # the usual header needs no parsing
        if request.mimetype != "application/json":
            raise ApiError(415, "unsupported_media_type", "send the transaction as application/json")
        charset = request.mimetype_params.get("charset")
        if charset is not None and charset.lower() not in ("utf-8", "utf8"):
            raise ApiError(415, "unsupported_media_type", f"charset {charset!r}: JSON is exchanged as utf-8")
    declared = environ.get("CONTENT_LENGTH")
    length = int(declared) if declared and declared.isdecimal() and declared.isascii() else request.content_length
    if length is not None and length > max_body_bytes:
        raise ApiError(413, "payload_too_large", f"body exceeds {max_body_bytes} bytes")
    try:
        body = _read_body(environ, length, max_body_bytes + 1)
    except Exception as exc:  # the server's chunked decoder (gunicorn's InvalidChunkSize, NoMoreData, ...)
        raise ApiError(400, "malformed_body", f"the request body could not be read: {type(exc).__name__}") from None
    if len(body) > max_body_bytes:
        raise ApiError(413, "payload_too_large", f"body exceeds {max_body_bytes} bytes")
    return body


def _read_body(environ: dict, length: int | None, most: int) -> bytes:
    """Werkzeug's rules for ``request.stream`` without its wrappers: a declared length is read to its end,
    a body without one only where the server marks its input terminated (chunked), else it is empty;
    never more than ``most`` bytes."""
    if length is None and not environ.get("wsgi.input_terminated"):
        return b""
    return environ["wsgi.input"].read(most if length is None else min(length, most))


def loads_strict(body: bytes):
    """JSON that every parser reads the same way, or a 400 ``malformed_json`` that says what is wrong."""
    depth = nesting_depth(body) if body.count(b"{") + body.count(b"[") > MAX_DEPTH else 0
    if depth > MAX_DEPTH:
        raise _malformed(f"nesting depth {depth} exceeds {MAX_DEPTH}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(f"body is not UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise _malformed("body starts with a byte order mark; send UTF-8 without one")
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise _malformed(f"duplicate key {ascii(exc.args[0])}") from None
    except ValueError as exc:
        raise _malformed(f"body is not valid JSON: {exc}") from None
    try:
        if b"\\u" in body:  # a lone surrogate can only come from an escape: UTF-8 decoding refused the rest
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _malformed("a string holds a lone surrogate escape (\\ud800-\\udfff); it is not Unicode text") from None
    return data


def nesting_depth(body: bytes) -> int:
    """Deepest bracket nesting outside strings, computed without recursion (an unclosed string counts as text)."""
    depth = deepest = 0
    for byte in _NOT_BRACKETS.sub(b"", _STRINGS.sub(b"", body)):
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    data = {}
    for key, value in pairs:
        if key in data:
            raise _DuplicateKey(key)
        data[key] = value
    return data


def _malformed(reason: str) -> ApiError:
    return ApiError(400, "malformed_json", reason)


def parse_lax(request) -> np.ndarray:
    data = request.get_json()
    missing = [name for name in FEATURE_NAMES if name not in data]
    if missing:
        raise ApiError(400, "missing_fields", f"Missing fields: {missing}")
    row = np.array([[data[name] for name in FEATURE_NAMES]])
    if row.dtype.kind in "USV":
        raise TypeError("string features reached the model")
    row = row.astype(np.float64)
    if not all(math.isfinite(value) for value in row[0]):
        raise ValueError("Input contains NaN or infinity")
    return row


def install(app, service) -> None:
    limit = service.settings.max_body_bytes
    service.parse = lambda request: parse_strict(request, limit)
