"""The OpenAPI 3 document, generated from the same pydantic model that validates requests."""

from __future__ import annotations

from fraudpipe.serving.validation import transaction_model


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def document(controls) -> dict:
    result = {"prediction": {"type": "integer", "enum": [0, 1]},
              "label": {"type": "string", "enum": ["FRAUD", "LEGITIMATE"]}}
    if "hide_probability" not in controls:
        result["fraud_probability"] = {"type": "number", "minimum": 0, "maximum": 1}
    responses = {"200": {"description": "the model's decision",
                         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
                 "400": _error("malformed JSON or missing fields"),
                 "503": _error("artifacts failed verification; the service is not ready")}
    if "validate_input" in controls:
        responses.update({"413": _error("body too large"), "415": _error("not application/json"),
                          "422": _error("a field is missing, extra, of the wrong type or out of range")})
    if "auth" in controls:
        responses["401"] = _error("missing or invalid X-API-Key")
    if "monitor" in controls:
        responses["403"] = _error("client flagged for probing (only when FRAUDPIPE_MONITOR_BLOCK is on)")
    if "rate_limit" in controls:
        responses["429"] = _error("rate limit exceeded; see Retry-After")
    predict = {"summary": "Classify one transaction", "operationId": "predict",
               "requestBody": {"required": True, "content": {"application/json": {
                   "schema": {"$ref": "#/components/schemas/Transaction"}}}},
               "responses": dict(sorted(responses.items()))}
    if "auth" in controls:
        predict["security"] = [{"apiKey": []}]
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "fraudpipe inference API", "version": "1"},
        "paths": {
            "/health": {"get": {"summary": "Liveness and readiness", "operationId": "health", "responses": {
                "200": {"description": "ready"},
                "503": {"description": "not ready: a dependency (artifacts, API keys, audit log, rate-limit storage) is unusable"}}}},
            "/predict": {"post": predict},
            "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                      "responses": {"200": {"description": "the OpenAPI 3 document"}}}},
        },
        "components": {"schemas": {
            "Transaction": transaction_model().model_json_schema(),
            "Result": {"type": "object", "properties": result, "required": sorted(result)},
            "Error": {"type": "object", "properties": {"error": {"type": "string"},
                                                       "reason": {"type": "string"}},
                      "required": ["error"]},
        }},
    }
    if "auth" in controls:
        doc["components"]["securitySchemes"] = {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    return doc
