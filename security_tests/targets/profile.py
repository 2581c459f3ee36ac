"""A target profile: what the assessment needs to know about a JSON-over-HTTP tabular classifier.

Users point the assessment at services someone else wrote, with their own field names, labels, auth
scheme and limits. A profile (TOML) names those; every black-box attack reads it instead of assuming
fraudpipe's schema. ``draft_from_openapi`` writes a first profile from the target's OpenAPI document and
marks what a document cannot say (which label is the positive one, one example of each class).
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudpipe.errors import ConfigError

WINDOW_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
FEATURE_TYPES = ("float", "int", "bool")
TODO = "TODO"


@dataclass(frozen=True)
class FieldSpec:
    """One request field: its JSON type and the range the service is supposed to accept."""

    name: str
    type: str
    min: float
    max: float
    exclusive_min: bool = False
    exclusive_max: bool = False
    typical: tuple[float, float] | None = None
    """The range real inputs span, where an attacker who knows the domain draws from (default: the whole range)."""
    unit: float | None = None
    """The size of one meaningful step (evasion moves and probing distances count in units)."""
    decimals: int | None = None
    """Decimal places a float is sent with (amounts in cents: 2); None sends it as computed."""
    description: str = ""

    def contains(self, value: float) -> bool:
        above = value > self.min if self.exclusive_min else value >= self.min
        below = value < self.max if self.exclusive_max else value <= self.max
        return bool(above and below)

    @property
    def lowest(self) -> float:
        """The smallest value the service accepts: ``min``, or one step above it when ``min`` is excluded."""
        return self.min + self.resolution if self.exclusive_min else self.min

    @property
    def highest(self) -> float:
        return self.max - self.resolution if self.exclusive_max else self.max

    @property
    def resolution(self) -> float:
        """The smallest difference the service can be sent: a cent for a float sent with 2 decimals."""
        return 10.0 ** -self.decimals if self.decimals is not None else self.step

    def cast(self, value: float) -> float | int | bool:
        if self.type == "float":
            return float(value) if self.decimals is None else round(float(value), self.decimals)
        if self.type == "bool":
            return bool(round(value))
        return int(round(value))

    def clip(self, value: float) -> float | int | bool:
        return self.cast(min(max(value, self.lowest), self.highest))

    @property
    def typical_range(self) -> tuple[float, float]:
        return self.typical if self.typical is not None else (self.lowest, self.highest)

    @property
    def meaningful_step(self) -> float:
        return self.unit if self.unit is not None else self.step

    @property
    def step(self) -> float:
        """The smallest change that means something: one unit for integers, a thousandth of the range else."""
        return 1.0 if self.type in ("int", "bool") else (self.max - self.min) / 1000.0


@dataclass(frozen=True)
class TargetProfile:
    name: str
    url: str | None
    predict_path: str
    health_path: str | None
    auth_header: str
    auth_scheme: str
    label_path: tuple[str, ...]
    positive: Any
    rate_limit: int | None
    rate_window: str
    fields: tuple[FieldSpec, ...]
    positive_example: dict
    negative_example: dict
    source: str = "built in"
    openapi_path: str | None = None
    extra_headers: dict = field(default_factory=dict)
    timeout: float = 10.0
    """Seconds the assessor waits for one answer (``[response] timeout``), after which it reads "not assessed"."""
    own_service: bool = False
    """The target is fraudpipe itself (set only by ``fraudpipe_target``, never from a file): the report may
    then use fraudpipe's own specifics (its artifact files, its monitor, its training data)."""

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def window_seconds(self) -> int:
        return WINDOW_SECONDS[self.rate_window]

    def auth_headers(self, key: str | None) -> dict[str, str]:
        if not key:
            return {}
        return {self.auth_header: f"{self.auth_scheme} {key}" if self.auth_scheme else key}

    def label_of(self, body: Any) -> Any:
        """The label at the profile's dotted path, or None when the answer does not carry one."""
        value = body
        for part in self.label_path:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value

    def row(self, values) -> dict:
        """A request body from a vector in field order, cast and clipped to each field's range."""
        return {f.name: f.clip(float(v)) for f, v in zip(self.fields, values)}

    def vector(self, payload: dict) -> list[float]:
        return [float(payload[name]) for name in self.field_names]

    def random_rows(self, n: int, seed: int) -> list[dict]:
        """Uniform over each field's accepted range: what an attacker who knows the schema, not the data, sends."""
        import numpy as np

        rng = np.random.default_rng(seed)
        columns = []
        for spec in self.fields:
            if spec.type == "float":
                columns.append(rng.uniform(spec.lowest, spec.highest, n))
            else:
                columns.append(rng.integers(int(np.ceil(spec.lowest)), int(np.floor(spec.highest)) + 1, n))
        return [self.row(values) for values in zip(*columns)]


def load_profile(path: str | Path, url_override: str | None = None) -> TargetProfile:
    """Read and check a profile; every mistake is one line naming the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read target profile ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return profile_from_dict(data, source=str(path), url_override=url_override)


def profile_from_dict(data: dict, source: str = "built in", url_override: str | None = None) -> TargetProfile:
    def need(table: dict, key: str, where: str):
        if key not in table or table[key] in (None, "", TODO):
            raise ConfigError(f"{source}: {where}{key} is required")
        return table[key]

    auth, response, limit = data.get("auth", {}), data.get("response", {}), data.get("rate_limit", {})
    features = need(data, "features", "")
    fields = tuple(_field(name, spec, source) for name, spec in features.items())
    examples = need(data, "examples", "")
    positive, negative = (_example(need(examples, k, "examples."), fields, f"examples.{k}", source)
                          for k in ("positive", "negative"))
    per = limit.get("per", "minute")
    if per not in WINDOW_SECONDS:
        raise ConfigError(f"{source}: rate_limit.per must be one of {', '.join(WINDOW_SECONDS)}, got {per!r}")
    requests = limit.get("requests")
    if requests is not None and (not isinstance(requests, int) or requests < 1):
        raise ConfigError(f"{source}: rate_limit.requests must be a positive whole number, got {requests!r}")
    header = auth.get("header", "X-API-Key")
    scheme = auth.get("scheme", "")
    return TargetProfile(
        name=data.get("name", "unnamed service"), url=url_override or data.get("url"),
        predict_path=data.get("predict_path", "/predict"), health_path=data.get("health_path"),
        openapi_path=data.get("openapi_path"),
        auth_header=header, auth_scheme=scheme,
        label_path=tuple(str(need(response, "label", "response.")).split(".")),
        positive=need(response, "positive", "response."), rate_limit=requests, rate_window=per,
        fields=fields, positive_example=positive, negative_example=negative, source=source)


def _field(name: str, spec: dict, source: str) -> FieldSpec:
    kind = spec.get("type")
    if kind not in FEATURE_TYPES:
        raise ConfigError(f"{source}: features.{name}.type must be one of {', '.join(FEATURE_TYPES)}, got {kind!r}")
    low, high = (0, 1) if kind == "bool" else (spec.get("min"), spec.get("max"))
    for bound, value in (("min", low), ("max", high)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ConfigError(f"{source}: features.{name}.{bound} must be a finite number, got {value!r}")
    if low >= high:
        raise ConfigError(f"{source}: features.{name}: min {low} must be below max {high}")
    exclusive = {}
    for flag in ("exclusive_min", "exclusive_max"):
        value = spec.get(flag, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: features.{name}.{flag} must be true or false, got {value!r}")
        exclusive[flag] = value
    typical = spec.get("typical")
    if typical is not None:
        if (not isinstance(typical, list) or len(typical) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in typical)
                or not low <= typical[0] < typical[1] <= high):
            raise ConfigError(f"{source}: features.{name}.typical must be [low, high] inside [min, max], got {typical!r}")
        typical = (float(typical[0]), float(typical[1]))
    unit = spec.get("unit")
    if unit is not None and (not isinstance(unit, (int, float)) or isinstance(unit, bool) or not 0 < unit <= high - low):
        raise ConfigError(f"{source}: features.{name}.unit must be a positive number within the range, got {unit!r}")
    decimals = spec.get("decimals")
    if decimals is not None and (kind != "float" or not isinstance(decimals, int) or isinstance(decimals, bool)
                                 or not 0 <= decimals <= 12):
        raise ConfigError(f"{source}: features.{name}.decimals must be a whole number 0-12 on a float, got {decimals!r}")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{source}: features.{name}.description must be text")
    return FieldSpec(name, kind, float(low), float(high), **exclusive, typical=typical,
                     unit=None if unit is None else float(unit), decimals=decimals, description=description)


def _example(values: dict, fields: tuple[FieldSpec, ...], where: str, source: str) -> dict:
    if not isinstance(values, dict) or set(values) != {f.name for f in fields}:
        raise ConfigError(f"{source}: {where} must give exactly the fields {', '.join(f.name for f in fields)}")
    return {f.name: f.cast(values[f.name]) for f in fields}


FRAUDPIPE_SOURCE = "fraudpipe's own schema (fraudpipe.data.FEATURES)"
FRAUDPIPE_PROFILE = Path(__file__).with_name("fraudpipe.toml")


@functools.lru_cache(maxsize=8)
def fraudpipe_target(url: str | None = None) -> TargetProfile:
    """fraudpipe as the assessment sees every target: its shipped profile (kept equal to its schema by a test)."""
    from dataclasses import replace

    return replace(load_profile(FRAUDPIPE_PROFILE, url_override=url), own_service=True)


def fraudpipe_profile(url: str | None = None, rate_limit: int | None = 100) -> TargetProfile:
    """fraudpipe's own service, described from the schema the service itself validates against."""
    from fraudpipe.data import FEATURES, FRAUD_EXAMPLE, LEGITIMATE_EXAMPLE

    features = {f.name: {"type": f.kind, "min": f.low, "max": f.high,
                         **({} if f.low_inclusive else {"exclusive_min": True}),
                         "typical": list(f.typical), "unit": f.unit, **({"decimals": 2} if f.kind == "float" else {}),
                         "description": f.description} for f in FEATURES}
    return profile_from_dict({
        "name": "fraudpipe fraud-detection service", "url": url, "predict_path": "/predict",
        "health_path": "/health", "openapi_path": "/openapi.json", "auth": {"header": "X-API-Key", "scheme": ""},
        "response": {"label": "label", "positive": "FRAUD"},
        "rate_limit": {"requests": rate_limit, "per": "minute"} if rate_limit else {},
        "features": features, "examples": {"positive": FRAUD_EXAMPLE, "negative": LEGITIMATE_EXAMPLE}},
        source=FRAUDPIPE_SOURCE)


def draft_from_openapi(document: dict, url: str) -> str:
    """A TOML profile from an OpenAPI 3 document: fields, types and ranges of the first JSON POST body.

    What a document cannot tell (the positive label, one example of each class, the promised limit) is
    written as ``TODO`` so that loading the draft fails until a person has filled it in.
    """
    path, schema = _first_json_post(document)
    schema = _resolve(document, schema)
    lines = [f'name = "{document.get("info", {}).get("title", "unnamed service")}"', f'url = "{url}"',
             f'predict_path = "{path}"']
    if "/health" in document.get("paths", {}):
        lines.append('health_path = "/health"')
    lines += ["", "[auth]", f'header = "{_auth_header(document)}"', 'scheme = ""', "", "[response]",
              f'label = "{TODO}"                # dotted path to the label in the answer',
              f'positive = "{TODO}"             # the label an attacker wants to avoid', "",
              "[rate_limit]", f'# requests = {TODO}            # what the service promises', 'per = "minute"']
    for name, spec in schema.get("properties", {}).items():
        spec = _resolve(document, spec)
        kind = {"integer": "int", "boolean": "bool"}.get(spec.get("type"), "float")
        lines += ["", f"[features.{name}]", f'type = "{kind}"']
        lines += _bounds(spec)
    lines += ["", "[examples]", f'positive = "{TODO}"  # {{ field = value, ... }} answered positive',
              f'negative = "{TODO}"  # one answered negative']
    return "\n".join(lines) + "\n"


def _bounds(spec: dict) -> list[str]:
    """OpenAPI 3.0 writes ``exclusiveMinimum: true`` beside ``minimum``; 3.1 writes the bound itself."""
    lines = []
    for side, word in (("min", "Minimum"), ("max", "Maximum")):
        inclusive, exclusive = spec.get(word.lower()), spec.get(f"exclusive{word}")
        numeric = isinstance(exclusive, (int, float)) and not isinstance(exclusive, bool)
        bound = exclusive if numeric else inclusive
        lines.append(f"{side} = {bound}" if bound is not None else f'{side} = "{TODO}"')
        if numeric or exclusive is True:
            lines.append(f"exclusive_{side} = true")
    return lines


def _first_json_post(document: dict) -> tuple[str, dict]:
    for path, operations in document.get("paths", {}).items():
        body = operations.get("post", {}).get("requestBody", {})
        schema = body.get("content", {}).get("application/json", {}).get("schema")
        if schema:
            return path, schema
    raise ConfigError("the OpenAPI document has no POST operation with an application/json body")


def _resolve(document: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    if not ref:
        return schema
    node: Any = document
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part, {})
    return node


def _auth_header(document: dict) -> str:
    for scheme in document.get("components", {}).get("securitySchemes", {}).values():
        if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
            return scheme.get("name", "X-API-Key")
        if scheme.get("type") == "http":
            return "Authorization"
    return "X-API-Key"
