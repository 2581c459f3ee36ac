"""A target profile: what the assessment needs to know about a JSON-over-HTTP tabular classifier.

Users point the assessment at services someone else wrote, with their own field names, labels, auth
scheme and limits. A profile (TOML) names those; every black-box attack reads it instead of assuming
fraudpipe's schema. ``draft_from_openapi`` writes a first profile from the target's OpenAPI document and
marks what a document cannot say (which label is the positive one, one example of each class).
"""

from __future__ import annotations

import functools
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudpipe.errors import ConfigError

class BadInput(ConfigError):
    """An input file (a profile, an OpenAPI document) the assessment will not read: one line names every
    problem, and the command exits 4 (pytest's usage error)."""


MAX_INPUT_BYTES = 1 << 20
"""A profile or accepted-risks file larger than this is refused unread: no real one comes near it."""

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
    path: tuple[str, ...] = ()
    """Where the feature sits in the request body (``claim.amount``); empty: its name at the top level."""
    attacker_controls: bool = True
    """False for a feature the attacker cannot change (an account's age): evasion moves only the others."""

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
    method: str = "POST"
    request_body: dict = field(default_factory=dict)
    """Constant fields of every request body (``[request] body``); features are placed into a copy."""
    score_path: tuple[str, ...] | None = None
    """A field the target is expected to hide (``[response] score``): CRIT-2 also checks that exact field."""
    rate_scope: str = "both"
    """What the promised limit counts: per ``key``, per ``address``, or ``both`` (HIGH-1 judges that promise)."""
    audit: AuditLog | None = None
    artifacts: Artifacts | None = None
    environment: Environment | None = None
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
        return reach(body, self.label_path)

    def is_positive(self, label: Any) -> bool:
        """Whether ``label`` is the positive one: equal and of the same kind (``true`` is not ``1``)."""
        same_kind = isinstance(label, bool) is isinstance(self.positive, bool)
        return label is not None and same_kind and label == self.positive

    @property
    def shaped(self) -> bool:
        """The body is not a flat object of features (a template, or a feature at a path of its own)."""
        return bool(self.request_body) or any(f.path for f in self.fields)

    def body(self, payload: Any) -> Any:
        """What goes on the wire for ``payload``, an object keyed by feature name: each feature placed at its
        path in a copy of the body template; another key (an attack's extra field) beside the first feature.
        Anything but an object, and every payload of a flat profile, goes as it is."""
        if not self.shaped or not isinstance(payload, dict):
            return payload
        import copy

        out = copy.deepcopy(self.request_body)
        paths = {f.name: f.path or (f.name,) for f in self.fields}
        beside = paths[self.fields[0].name][:-1]
        for name, value in payload.items():
            place(out, paths.get(name, (*beside, name)), value)
        return out

    def encode(self, payload: Any) -> bytes:
        """``body(payload)`` as the JSON bytes a raw request carries."""
        import json

        return json.dumps(self.body(payload)).encode()

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


def reach(value: Any, path: tuple[str, ...]) -> Any:
    """The value at a dotted path through objects and lists (``results.0.decision``), or None."""
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def place(body: dict, path: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at ``path``, making the objects on the way."""
    for part in path[:-1]:
        body = body.setdefault(part, {})
    body[path[-1]] = value


@dataclass(frozen=True)
class AuditLog:
    """``[audit]``: the target's own JSON-lines log, read (never written) after the assessment's requests."""

    log: Path
    status: tuple[str, ...]
    client: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Artifacts:
    """``[artifacts]``: the model folder and the command that says whether the target would serve a folder."""

    folder: Path
    verify: tuple[str, ...]

    def command(self, folder: Path) -> list[str]:
        return [part.replace("{folder}", str(folder)) for part in self.verify]


@dataclass(frozen=True)
class Environment:
    """``[environment]``: the requirements the target was built from and the interpreter that runs it."""

    requirements: Path
    python: Path


def load_profile(path: str | Path, url_override: str | None = None) -> TargetProfile:
    """Read and check a profile; every mistake is one line naming the key."""
    path = Path(path)
    return profile_from_dict(read_toml(path, "target profile"), source=str(path), url_override=url_override)


def read_toml(path: Path, what: str) -> dict:
    """A small TOML input file, or ``BadInput`` in one line: missing, a directory, too large, not UTF-8, not TOML."""
    try:
        if not path.is_file():
            raise BadInput(f"{path}: no {what} file there")
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise BadInput(f"{path}: a {what} is at most {MAX_INPUT_BYTES >> 20} MiB, this file is larger")
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"{path}: cannot read {what} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: a {what} is UTF-8 text; this file is not") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise BadInput(f"{path}: not valid TOML: nested too deep") from None


_TEXT, _PATH, _NUMBER = "text", "a path starting with /", "a number"
_FILE, _DOTTED = "an absolute file path", "a dotted path"
SHAPE: dict[str, dict[str, str]] = {
    "": {"name": _TEXT, "url": _TEXT, "predict_path": _PATH, "health_path": _PATH, "openapi_path": _PATH,
         "auth": "table", "request": "table", "response": "table", "rate_limit": "table", "features": "table",
         "examples": "table", "audit": "table", "artifacts": "table", "environment": "table"},
    "auth": {"header": "an HTTP header name", "scheme": _TEXT},
    "request": {"body": "table", "method": "POST, PUT or PATCH"},
    "response": {"label": _DOTTED, "positive": "text, a number or true/false",
                 "timeout": "seconds, above 0 and at most 300", "score": _DOTTED},
    "rate_limit": {"requests": "a positive whole number", "per": _TEXT, "scope": "key, address or both"},
    "examples": {"positive": "table", "negative": "table"},
    "feature": {"type": _TEXT, "min": _NUMBER, "max": _NUMBER, "exclusive_min": "true or false",
                "exclusive_max": "true or false", "typical": "[low, high]", "unit": _NUMBER, "decimals": "a whole number",
                "description": _TEXT, "path": _DOTTED, "attacker_controls": "true or false"},
    "audit": {"log": _FILE, "status": _DOTTED, "client": _DOTTED},
    "artifacts": {"folder": _FILE, "verify": "a command as a list of text"},
    "environment": {"requirements": _FILE, "python": _FILE},
}
"""Every key a profile may hold and what it accepts: anything else is a typo that would silently change what
the assessment measures, so it is refused."""

_CHOICES = {"POST, PUT or PATCH": ("POST", "PUT", "PATCH"), "key, address or both": ("key", "address", "both")}
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _accepts(kind: str, value) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "table":
        return isinstance(value, dict)
    if kind == _NUMBER:
        return number and math.isfinite(value)
    if kind == "true or false":
        return isinstance(value, bool)
    if kind == "a whole number" or kind == "a positive whole number":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "seconds, above 0 and at most 300":
        return number and 0 < value <= 300
    if kind == "[low, high]":
        return isinstance(value, list)
    if kind == "a command as a list of text":
        return (isinstance(value, list) and bool(value)
                and all(isinstance(v, str) and v and not _CONTROL.search(v) for v in value))
    if kind == "text, a number or true/false":
        return isinstance(value, (str, int, float, bool)) and not (isinstance(value, str) and _CONTROL.search(value))
    if not isinstance(value, str) or _CONTROL.search(value):
        return False
    if kind == _PATH:
        return value.startswith("/")
    if kind == "an HTTP header name":
        return bool(_HEADER.fullmatch(value))
    if kind == _DOTTED:
        return bool(value) and all(value.split("."))
    if kind == _FILE:
        return value.startswith("/") and "\0" not in value
    if kind in _CHOICES:
        return value in _CHOICES[kind]
    return True


def shape_problems(data: dict) -> list[str]:
    """Every unknown key, wrongly typed value and ``TODO`` left in a profile, all at once."""
    problems: list[str] = []

    def check(table: dict, shape: dict[str, str], where: str) -> None:
        for key, value in table.items():
            name = f"{where}{key}"
            if value is None and key in shape:  # only a dict built in code can say "absent" this way
                continue
            if key not in shape:
                problems.append(f"unknown key {name}")
            elif _todo(value) and (not isinstance(value, dict) or name == "request.body"):
                problems.append(f"{name} is still TODO")
            elif not _accepts(shape[key], value):
                problems.append(f"{name} must be {shape[key]}, got {_shown(value)}")

    check(data, SHAPE[""], "")
    for section in ("auth", "request", "response", "rate_limit", "examples", "audit", "artifacts", "environment"):
        if isinstance(data.get(section), dict):
            check(data[section], SHAPE[section], f"{section}.")
    for name, spec in (data.get("features") or {}).items() if isinstance(data.get("features"), dict) else ():
        if not isinstance(spec, dict):
            problems.append(f"features.{name} must be a table")
        elif _CONTROL.search(name) or not name:
            problems.append("a feature name must be text without control characters")
        else:
            check(spec, SHAPE["feature"], f"features.{name}.")
    for side in ("positive", "negative"):
        example = (data.get("examples") or {}).get(side) if isinstance(data.get("examples"), dict) else None
        if isinstance(example, dict):
            problems += [f"examples.{side}.{k} must be a number or true/false, got {_shown(v)}"
                         for k, v in example.items() if not isinstance(v, (int, float, bool))]
    return problems


def _todo(value) -> bool:
    """A ``TODO`` anywhere in a value: text, or inside a list or table (a draft's body template)."""
    if isinstance(value, str):
        return value.strip().upper().startswith(TODO)
    if isinstance(value, dict):
        return any(_todo(k) or _todo(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_todo(v) for v in value)
    return False


def grey_box_problems(data: dict) -> list[str]:
    """The grey-box paths a profile names, checked as they are on disk without changing anything: the audit
    log is a file or not yet written (never a folder), the model folder a folder, the requirements a file,
    the interpreter a program; the verify command names ``{folder}``."""
    problems: list[str] = []

    def table(name: str) -> dict:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    def path(section: str, key: str) -> Path | None:
        value = table(section).get(key)
        return Path(value) if isinstance(value, str) and _accepts(_FILE, value) and not _todo(value) else None

    log = path("audit", "log")
    if log is not None and (log.is_dir() or not log.parent.is_dir()):
        problems.append(f"audit.log {log} is a folder" if log.is_dir() else f"audit.log {log}: no folder {log.parent}")
    if table("audit") and "log" not in table("audit"):
        problems.append("audit.log is required in [audit]")
    if table("audit") and "status" not in table("audit"):
        problems.append("audit.status is required in [audit]")
    folder = path("artifacts", "folder")
    if folder is not None and not folder.is_dir():
        problems.append(f"artifacts.folder {folder} is not a folder")
    verify = table("artifacts").get("verify")
    if isinstance(verify, list) and _accepts("a command as a list of text", verify) and not any(
            "{folder}" in part for part in verify):
        problems.append("artifacts.verify must name {folder}, the copy it is asked about")
    for key in ("folder", "verify"):
        if table("artifacts") and key not in table("artifacts"):
            problems.append(f"artifacts.{key} is required in [artifacts]")
    requirements, python = path("environment", "requirements"), path("environment", "python")
    if requirements is not None and not requirements.is_file():
        problems.append(f"environment.requirements {requirements} is not a file")
    if python is not None and not (python.is_file() and os.access(python, os.X_OK)):
        problems.append(f"environment.python {python} is not a program")
    for key in ("requirements", "python"):
        if table("environment") and key not in table("environment"):
            problems.append(f"environment.{key} is required in [environment]")
    return problems


def _shown(value) -> str:
    kind = {dict: "a table", list: "a list", bool: "true/false", str: "text"}.get(type(value), type(value).__name__)
    return kind if isinstance(value, (dict, list)) else f"{kind} {str(value)[:40]!r}"


def profile_from_dict(data: dict, source: str = "built in", url_override: str | None = None) -> TargetProfile:
    problems = shape_problems(data)
    problems += grey_box_problems(data)
    if problems:
        raise BadInput(f"{source}: " + "; ".join(problems))

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
    request = data.get("request", {})
    _check_paths(fields, request.get("body", {}), source)
    audit, artifacts, environment = data.get("audit"), data.get("artifacts"), data.get("environment")
    return TargetProfile(
        name=data.get("name", "unnamed service"), url=url_override or data.get("url"),
        predict_path=data.get("predict_path", "/predict"), health_path=data.get("health_path"),
        openapi_path=data.get("openapi_path"),
        auth_header=header, auth_scheme=scheme,
        label_path=tuple(str(need(response, "label", "response.")).split(".")),
        positive=need(response, "positive", "response."), rate_limit=requests, rate_window=per,
        fields=fields, positive_example=positive, negative_example=negative, source=source,
        timeout=float(response.get("timeout", 10.0)), method=request.get("method", "POST"),
        request_body=request.get("body", {}), score_path=_dotted(response.get("score")),
        rate_scope=limit.get("scope", "both"),
        audit=AuditLog(Path(audit["log"]), _dotted(audit["status"]), _dotted(audit.get("client"))) if audit else None,
        artifacts=Artifacts(Path(artifacts["folder"]), tuple(artifacts["verify"])) if artifacts else None,
        environment=(Environment(Path(environment["requirements"]), Path(environment["python"])) if environment
                     else None))


def _dotted(value: str | None) -> tuple[str, ...] | None:
    return tuple(value.split(".")) if value else None


def _check_paths(fields: tuple[FieldSpec, ...], template: dict, source: str) -> None:
    """Every feature lands on a path of its own that the body template leaves free."""
    problems, seen = [], {}
    for spec in fields:
        path = spec.path or (spec.name,)
        node: Any = template
        for depth, part in enumerate(path):
            if not isinstance(node, dict):
                problems.append(f"features.{spec.name}.path {'.'.join(path)} goes through a constant that is not "
                                "a table")
                break
            if depth == len(path) - 1 and part in node:
                problems.append(f"features.{spec.name}.path {'.'.join(path)} is a constant of [request] body")
            node = node.get(part, {})
        for other, taken in seen.items():
            shorter = min(len(taken), len(path))
            if taken[:shorter] == path[:shorter]:
                problems.append(f"features.{spec.name} and features.{other} share the path {'.'.join(path[:shorter])}")
        seen[spec.name] = path
    if problems:
        raise BadInput(f"{source}: " + "; ".join(problems))


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
                     unit=None if unit is None else float(unit), decimals=decimals, description=description,
                     path=_dotted(spec.get("path")) or (), attacker_controls=spec.get("attacker_controls", True))


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


HEALTH_ROUTES = ("/health", "/healthz", "/livez", "/readyz", "/ready", "/status", "/ping")


def draft_from_openapi(document: dict, url: str, document_path: str | None = None) -> str:
    """A TOML profile from an OpenAPI 3 document: fields, types and ranges of the first JSON POST body (features
    nested one object down get their ``path``, single-valued fields become the body template's constants), the
    label path when the answer has exactly one enum, a health route and the document's own path.

    What a document cannot tell (the positive label, one example of each class, the promised limit) is
    written as ``TODO`` so that loading the draft fails until a person has filled it in. The document is the
    target's, so it is hostile: the draft is written by a TOML library (no title or field name can change
    its structure), and a document of the wrong shape is refused in one line (``BadInput``).
    """
    import tomlkit

    if not isinstance(document, dict):
        raise BadInput("the OpenAPI document is not an object")
    path, schema = _first_json_post(document)
    schema = _resolve(document, schema)
    properties = schema.get("properties", {})
    if not isinstance(properties, dict) or not properties:
        raise BadInput(f"the OpenAPI request body of {path} names no properties")
    info = document.get("info")
    title = info.get("title") if isinstance(info, dict) else None
    draft = tomlkit.document()
    draft.add("name", _CONTROL.sub("", title) if isinstance(title, str) and title.strip() else "unnamed service")
    draft.add("url", url)
    draft.add("predict_path", path)
    paths = document["paths"]
    health = next((route for route in HEALTH_ROUTES if isinstance(paths.get(route), dict) and "get" in paths[route]),
                  None)
    if health is not None:
        draft.add("health_path", health)
    if document_path and document_path.startswith("/") and not _CONTROL.search(document_path):
        draft.add("openapi_path", document_path)
    elif "/openapi.json" in paths:
        draft.add("openapi_path", "/openapi.json")
    features_found, constants = _body_fields(document, properties)
    label = _label_path(document, path)
    auth = tomlkit.table()
    auth.add("header", _auth_header(document))
    auth.add("scheme", "")
    request = tomlkit.table()
    if constants or any(where for _, where, _ in features_found):
        body = tomlkit.inline_table()
        for name, value in constants.items():
            body[name] = value
        for _, where, _ in features_found:
            if where and where[0] not in body:
                body[where[0]] = {}
        request.add("body", body)
        request["body"].comment("constant fields; each feature is placed at its path")
    response = tomlkit.table()
    response.add("label", label or TODO)
    response["label"].comment("dotted path to the label in the answer" + (" (the answer's only enum)" if label else ""))
    response.add("positive", TODO)
    response["positive"].comment("the label an attacker wants to avoid")
    limit = tomlkit.table()
    limit.add(tomlkit.comment(f"requests = {TODO}  # what the service promises"))
    limit.add("per", "minute")
    features = tomlkit.table(is_super_table=True)
    for name, where, spec in features_found:
        feature = tomlkit.table()
        feature.add("type", {"integer": "int", "boolean": "bool"}.get(spec.get("type"), "float"))
        for key, value in _bounds(spec) if spec.get("type") != "boolean" else ():
            feature.add(key, value)
        if where:
            feature.add("path", ".".join((*where, name)))
        features.add(name, feature)
    examples = tomlkit.table()
    examples.add("positive", TODO)
    examples["positive"].comment("{ field = value, ... } answered positive")
    examples.add("negative", TODO)
    examples["negative"].comment("one answered negative")
    for key, table in (("auth", auth), ("request", request), ("response", response), ("rate_limit", limit),
                       ("features", features), ("examples", examples)):
        if key != "request" or "body" in table:
            draft.add(key, table)
    return tomlkit.dumps(draft)


def _clean(name) -> str:
    return _CONTROL.sub("", str(name)).replace(".", "_") or "_"


def _body_fields(document: dict, properties: dict) -> tuple[list[tuple[str, tuple[str, ...], dict]], dict]:
    """The features of a request body (name, the objects they sit in, schema) and its constant fields: an object
    property one level down holds features of its own (``claim.amount``); a property with a single ``enum``
    value or a ``const`` is a constant. Names are cleaned of control characters and dots."""
    found: list[tuple[str, tuple[str, ...], dict]] = []
    constants: dict = {}
    for name, spec in properties.items():
        spec = _resolve(document, spec)
        inner = spec.get("properties")
        constant = spec.get("const", spec["enum"][0] if isinstance(spec.get("enum"), list) and len(spec["enum"]) == 1
                            else None)
        printable = not (isinstance(constant, str) and _CONTROL.search(constant))
        if isinstance(constant, (str, int, float, bool)) and printable:
            constants[_clean(name)] = constant
        elif spec.get("type") == "object" and isinstance(inner, dict) and inner:
            found += [(_clean(sub), (_clean(name),), _resolve(document, value)) for sub, value in inner.items()]
        else:
            found.append((_clean(name), (), spec))
    names = [name for name, _, _ in found]
    return [(name if names.count(name) == 1 else "_".join((*where, name)), where, spec)
            for name, where, spec in found], constants


def _label_path(document: dict, path: str) -> str | None:
    """The dotted path of the one field with an ``enum`` in the JSON answer of ``path``'s 200 (through objects
    and the first item of lists), or None when there is not exactly one."""
    try:
        responses = document["paths"][path]["post"].get("responses", {})
        schema = _resolve(document, _resolve(document, responses.get("200", responses.get(200, {})))
                          ["content"]["application/json"]["schema"])
    except (KeyError, TypeError, AttributeError, BadInput):
        return None
    found: list[str] = []

    def walk(node, where: tuple[str, ...], depth: int) -> None:
        if depth > 8 or len(found) > 1:
            return
        node = _resolve(document, node)
        if isinstance(node.get("enum"), list) and where:
            found.append(".".join(where))
        elif node.get("type") == "array" and isinstance(node.get("items"), dict):
            walk(node["items"], (*where, "0"), depth + 1)
        elif isinstance(node.get("properties"), dict):
            for key, value in node["properties"].items():
                if isinstance(key, str) and key and "." not in key and not _CONTROL.search(key):
                    walk(value, (*where, key), depth + 1)

    try:
        walk(schema, (), 0)
    except BadInput:
        return None
    return found[0] if len(found) == 1 else None


def _bounds(spec: dict) -> list[tuple[str, Any]]:
    """OpenAPI 3.0 writes ``exclusiveMinimum: true`` beside ``minimum``; 3.1 writes the bound itself."""
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    bounds: list[tuple[str, Any]] = []
    for side, word in (("min", "Minimum"), ("max", "Maximum")):
        inclusive, exclusive = spec.get(word.lower()), spec.get(f"exclusive{word}")
        bound = exclusive if number(exclusive) else inclusive
        bounds.append((side, bound if number(bound) else TODO))
        if number(exclusive) or exclusive is True:
            bounds.append((f"exclusive_{side}", True))
    return bounds


def _first_json_post(document: dict) -> tuple[str, dict]:
    paths = document.get("paths")
    if not isinstance(paths, dict):
        raise BadInput("the OpenAPI document's 'paths' is not an object")
    for path, operations in paths.items():
        post = operations.get("post") if isinstance(operations, dict) else None
        body = _resolve(document, post.get("requestBody", {})) if isinstance(post, dict) else {}
        content = body.get("content") if isinstance(body, dict) else None
        media = content.get("application/json") if isinstance(content, dict) else None
        schema = media.get("schema") if isinstance(media, dict) else None
        if isinstance(schema, dict) and isinstance(path, str) and path.startswith("/") and not _CONTROL.search(path):
            return path, schema
    raise BadInput("the OpenAPI document has no POST operation with an application/json body")


def _resolve(document: dict, schema, hops: int = 0) -> dict:
    """A local ``$ref`` followed (into objects or lists), at most 20 hops; anything else is refused."""
    if not isinstance(schema, dict):
        raise BadInput(f"the OpenAPI document has a schema that is not an object ({_shown(schema)})")
    ref = schema.get("$ref")
    if ref is None:
        return schema
    if hops >= 20 or not isinstance(ref, str) or not ref.startswith("#/"):
        raise BadInput(f"the OpenAPI document's $ref {str(ref)[:80]!r} is not a local reference this draft can follow")
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise BadInput(f"the OpenAPI document's $ref {ref[:80]!r} points nowhere")
    return _resolve(document, node, hops + 1)


def _auth_header(document: dict) -> str:
    components = document.get("components")
    schemes = components.get("securitySchemes") if isinstance(components, dict) else None
    for scheme in (schemes.values() if isinstance(schemes, dict) else ()):
        if not isinstance(scheme, dict):
            continue
        if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
            name = scheme.get("name")
            return name if isinstance(name, str) and _HEADER.fullmatch(name) else "X-API-Key"
        if scheme.get("type") == "http":
            return "Authorization"
    return "X-API-Key"
