"""Request parsing: the strict pydantic gate of the hardened profile, and the acquired service's lax one.

Both return a float64 row in schema order. The lax path keeps the seed's behaviour exactly: only
missing fields are refused (400); anything numpy can turn into a finite number passes; the rest fails
inside the model call, which the acquired service answered with a 500.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from fraudpipe.data import FEATURE_NAMES, FEATURES
from fraudpipe.serving.errors import ApiError


@lru_cache(maxsize=1)
def transaction_model() -> type[BaseModel]:
    """The request model, built from the pipeline's schema so ranges are written once."""
    fields = {}
    for feature in FEATURES:
        bound = {"gt" if not feature.low_inclusive else "ge": feature.low, "le": feature.high}
        if feature.kind == "float":
            annotation = Annotated[float, Field(allow_inf_nan=False, description=feature.description, **bound)]
        else:
            annotation = Annotated[int, Field(description=feature.description,
                                              **{k: int(v) for k, v in bound.items()})]
        fields[feature.name] = (annotation, ...)
    return create_model("Transaction", __config__=ConfigDict(strict=True, extra="forbid"), **fields)


def parse_strict(request, max_body_bytes: int) -> np.ndarray:
    """NaN and Infinity parse (as Python's JSON does) and are then refused as non-finite: 422 on the field."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the transaction as application/json")
    length = request.content_length
    if length is not None and length > max_body_bytes:
        raise ApiError(413, "payload_too_large", f"body exceeds {max_body_bytes} bytes")
    body = request.stream.read(max_body_bytes + 1)
    if len(body) > max_body_bytes:
        raise ApiError(413, "payload_too_large", f"body exceeds {max_body_bytes} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from None
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
    return np.array([[getattr(transaction, name) for name in FEATURE_NAMES]], dtype=np.float64)


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
