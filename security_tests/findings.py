"""The findings catalog: the one place finding text lives. Tests and every report output read it.

Text is written for the target assessed: each field is a template over the target profile (``{target}``,
``{predict}``, ``{auth}``, ``{positive}``, ``{features}``; ``{inputs}`` and ``{keys_cli}`` read as fraudpipe's
own words for fraudpipe), and ``own`` holds fraudpipe's own wording where a whole sentence differs (its
hour, its fraud probability, ``fraud_model.pkl``, its seed's transactions), used only when the profile is
fraudpipe's (``own_service``). ``Finding.worded(profile)`` gives the text for one target; nothing else
formats finding text.

Severity is computed from the CVSS 3.1 vector. Where the honest vector scores outside the band the
original write-up gave, the id keeps the original band (ids are references people already use) and
``severity_note`` says why the computed severity differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from cvss import CVSS3

from security_tests.contract import Severity

if TYPE_CHECKING:
    from security_tests.targets.profile import TargetProfile

OWASP_ML_2023 = {
    "ML01": "Input Manipulation Attack", "ML02": "Data Poisoning Attack", "ML03": "Model Inversion Attack",
    "ML04": "Membership Inference Attack", "ML05": "Model Theft", "ML06": "AI Supply Chain Attacks",
    "ML07": "Transfer Learning Attack", "ML08": "Model Skewing", "ML09": "Output Integrity Attack",
    "ML10": "Model Poisoning",
}
ATLAS = {
    "AML.T0040": "AI Model Inference API Access", "AML.T0024.002": "Extract AI Model",
    "AML.T0005": "Create Proxy AI Model", "AML.T0013": "Discover AI Model Ontology",
    "AML.T0043": "Craft Adversarial Data", "AML.T0015": "Evade AI Model",
    "AML.T0010": "AI Supply Chain Compromise", "AML.T0018": "Manipulate AI Model",
    "AML.T0011.000": "Unsafe AI Artifacts", "AML.T0029": "Denial of AI Service",
    "AML.T0020": "Poison Training Data",
}


WORDED_FIELDS = ("title", "component", "description", "risk", "remediation", "attack", "severity_note",
                 "black_box_attack")
_PLACEHOLDER = re.compile(r"\{(target|predict|auth|positive|features|inputs|keys_cli)\}")


def profile_words(profile: TargetProfile) -> dict[str, str]:
    """What a template may name, from the profile alone."""
    names = list(profile.field_names)
    features = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
    scheme = f" with the {profile.auth_scheme} scheme" if profile.auth_scheme else ""
    own = profile.own_service
    return {"target": profile.name, "predict": profile.predict_path, "auth": f"{profile.auth_header} header{scheme}",
            "positive": str(profile.positive), "features": features, "inputs": "transactions" if own else "inputs",
            "keys_cli": "; issue keys with `python -m fraudpipe keys new`" if own else ""}


def fill(template: str, words: dict[str, str]) -> str:
    """Only the known placeholders are replaced: other braces in the text (a literal input) stay."""
    return _PLACEHOLDER.sub(lambda m: words[m.group(1)], template)


@dataclass(frozen=True)
class Finding:
    """One finding: identity, scoring and mapping are fixed; its text is templates (see the module note)."""

    id: str
    title: str
    cvss_vector: str
    component: str
    owasp: str
    atlas: tuple[str, ...]
    description: str
    risk: str
    remediation: str
    control: str | None
    stage: str
    attack: str
    severity_note: str = ""
    residual: bool = False
    also_stages: tuple[str, ...] = field(default=())
    cwe: tuple[str, ...] = field(default=())
    residual_in: tuple[str, ...] = field(default=())
    """Findings that hold the risk this finding's control does not remove (its control verified, risk remains)."""
    relies_on: tuple[str, ...] = field(default=())
    """Other controls this finding's control needs to hold: switching one of them off reopens this finding too
    (HIGH-1's budget per key counts authenticated keys, so without ``auth`` a key is no identity)."""
    black_box_attack: str = ""
    """Text: what runs against a live target from its profile alone (empty: the finding needs the inside)."""
    own: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    """fraudpipe's own wording of some ``WORDED_FIELDS``, used only when the target is fraudpipe itself."""

    def worded(self, profile: TargetProfile) -> WordedFinding:
        words = profile_words(profile)
        texts = {name: fill(self.own.get(name, getattr(self, name)) if profile.own_service else getattr(self, name),
                            words) for name in WORDED_FIELDS}
        return WordedFinding(self, **texts)

    @cached_property
    def _cvss(self) -> CVSS3:
        return CVSS3(self.cvss_vector)

    @property
    def cvss_score(self) -> float:
        return float(self._cvss.scores()[0])

    @property
    def severity(self) -> Severity:
        return Severity.from_label(self._cvss.severities()[0])

    @property
    def id_band(self) -> Severity:
        band = {"CRIT": "CRITICAL", "HIGH": "HIGH", "MED": "MEDIUM", "LOW": "LOW"}[self.id.split("-")[0]]
        return Severity[band]

    @property
    def owasp_name(self) -> str:
        return f"{self.owasp} {OWASP_ML_2023[self.owasp]}"

    @property
    def stages(self) -> tuple[str, ...]:
        return (self.stage, *self.also_stages)


@dataclass(frozen=True)
class WordedFinding:
    """A finding as the report shows it for one target: the catalog entry and its text for that target."""

    finding: Finding
    title: str
    component: str
    description: str
    risk: str
    remediation: str
    attack: str
    severity_note: str
    black_box_attack: str

    def __getattr__(self, name: str):
        return getattr(self.finding, name)

    def as_dict(self) -> dict:
        f = self.finding
        return {"id": f.id, "title": self.title, "severity": f.severity.label, "id_band": f.id_band.label,
                "cvss_vector": f.cvss_vector, "cvss_score": f.cvss_score, "component": self.component,
                "owasp": f.owasp_name, "atlas": [f"{t} {ATLAS[t]}" for t in f.atlas],
                "description": self.description, "risk": self.risk, "remediation": self.remediation,
                "control": f.control, "stage": f.stage, "attack": self.attack,
                "owasp_id": f.owasp, "atlas_ids": list(f.atlas),
                "severity_note": self.severity_note, "residual": f.residual,
                "stages": list(f.stages), "also_stages": list(f.also_stages),
                "residual_in": list(f.residual_in), "cwe": list(f.cwe),
                "black_box_attack": self.black_box_attack}


FINDINGS: tuple[Finding, ...] = (
    Finding(
        id="CRIT-1", title="Inference API has no authentication",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N",
        component="Inference API, POST {predict}", owasp="ML05", atlas=("AML.T0040", "AML.T0024.002"),
        description="A service that answers {predict} for any caller treats no key, an empty key, a wrong key and a key sent in the query string alike; the attempts below measure whether this one does.",
        risk="Anyone who can reach the port can query the model without limit or attribution, which is "
             "the precondition for extraction, boundary probing and evasion calibration.",
        remediation="Require a key in the {auth}; store keys only as SHA-256 hashes; compare in constant "
                    "time; log the key id, never the key{keys_cli}.",
        own={"description": "The acquired service answers {predict} for any caller: no key, an empty key, a wrong key and a key sent in the query string are all treated alike.",
             "component": "Flask inference API, POST /predict"},
        control="auth", stage="Inference API (extraction)",
        attack="No key, an empty or wrong key, the key in the query string, keys one edit from the valid key (prefix, case, whitespace, its SHA-256), the key smuggled into 21 other places (query parameters, body, cookie, other schemes and headers, the auth header twice), and every route, method and spelling of {predict}; in-process also a service with no key configured, and `serve` asked to expose the unauthenticated profile on addresses beyond loopback.",
        severity_note="The id keeps the write-up's Critical band; the honest vector (model confidentiality "
                      "high, integrity low, no availability impact) scores High.",
        cwe=("CWE-306",),
        black_box_attack="The same attempts over HTTP with the profile's header and scheme, one request with the key given first (the target must answer it); requests without a key come from fresh source addresses.",
    ),
    Finding(
        id="CRIT-2", title="Model score exposed in the API response",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N",
        component="POST {predict} response body", owasp="ML01", atlas=("AML.T0040", "AML.T0043"),
        description="Each answer carries a score, a continuous signal that tells an attacker how far an input "
                    "is from the decision boundary.",
        risk="A score lets an attacker calibrate evasions and model inversion with fewer queries. "
             "This run measures how much it adds over labels alone: for a boundary along one feature a "
             "label-only bisection needs only about log2(range / tolerance) queries.",
        remediation="Return the label only; keep the score in the audit log; treat label-only "
                    "probing as still possible and detect it (see the evasion and monitoring findings).",
        attack="Decision-boundary probing from the {positive} example (a sweep of each of {features} and a label-only bisection of where the label flips); whole answers compared across inputs of very different score within one label; generated bodies, refusals included, checked for any score-like number.",
        own={"title": "Fraud probability exposed in the API response",
             "description": "Each answer carries fraud_probability, a continuous signal that tells an attacker "
                            "how far a transaction is from the decision boundary."},
        control="hide_probability", stage="API response", residual_in=("HIGH-3",),
        severity_note="The id keeps the write-up's Critical band; because a label-only search finds the same "
                      "boundary in a dozen queries, exposing the probability adds little and scores Medium.",
        cwe=("CWE-200",),
        black_box_attack="The same probing, answer comparison and generated bodies over HTTP within the budget; fields that differ on identical input (request ids, clocks) are left out.",
    ),
    Finding(
        id="HIGH-1", title="No rate limit on {predict}",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:L",
        component="POST {predict}", owasp="ML05", atlas=("AML.T0024.002", "AML.T0005", "AML.T0029"),
        description="A service that answers every automated query at full speed lets an attacker collect as many labelled answers as it likes and train a copy of the model.",
        risk="Unbounded queries make model extraction and exhaustive probing cheap and let one client "
             "exhaust the service.",
        remediation="Limit per API key and per client address, before authentication, with a sliding log "
                    "(no boundary burst) in shared Redis when several workers serve; answer 429 with Retry-After; ignore X-Forwarded-For unless a "
                    "trusted proxy count is configured; bound how long a client may take to send its headers and its body. A limit slows extraction; it does not stop it.",
        own={"description": "The service answers every automated query at full speed, so an attacker can collect as many labelled answers as it likes and train a copy of the model."},
        control="rate_limit", stage="Inference API (extraction)", residual_in=("HIGH-4",), relies_on=("auth",),
        attack="The promised limit plus a fifth more automated queries on one key and address, then the same key from another address and another key from the same address; wrong and missing keys from one address; in-process also a window-boundary burst, a pause then a burst, rotated keys and addresses, a key per address of one IPv6 /64, spellings of one address behind a proxy, and in-process limit storage started with two workers; and slow-header and slow-body connections (slowloris) held open while plain requests must still be answered.",
        severity_note="The id keeps the write-up's High band; the vector (partial confidentiality and "
                      "availability impact) scores Medium.",
        cwe=("CWE-770",),
        black_box_attack="The flood on a key and source address no other test used in the window, the two bypasses after it, and wrong or missing keys from one address.",
    ),
    Finding(
        id="HIGH-2", title="No artifact integrity check at load time",
        cvss_vector="CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H",
        component="Model loading (deserialising the model files)", owasp="ML06",
        atlas=("AML.T0010", "AML.T0011.000", "AML.T0018"),
        description="A service that deserialises whatever sits in its model folder runs what an attacker puts there: a pickled model is a program, and a swapped file changes every answer.",
        risk="Anyone with write access to model storage gets code execution in the inference service and "
             "can swap in a backdoored model that keeps answering normally.",
        remediation="Sign a manifest of SHA-256 hashes at training time; verify it with a trusted key kept outside the artifact folder before loading; read, hash and deserialise the same bytes; prefer formats that are data, not code; refuse any pickle global off an allowlist.",
        control="verify_artifacts", stage="Model artifact", also_stages=("Feature engineering",),
        attack="Appended bytes, the model file grown 64 MiB past its signed size (refused, and with how much of it read), a re-pickled scaler, a trojan in the model and in the scaler that writes a marker file when unpickled, 15 same-size tamperings (serving arrays, scaler, model, metrics, charts), a planted public key, a release signed by another key, the signature zeroed, emptied or removed, the manifest format downgraded.",
        own={"remediation": "Sign a manifest of SHA-256 hashes with Ed25519 at training time; verify with a trusted key kept outside the artifact folder; read, hash and deserialise the same bytes; serve from arrays loaded with allow_pickle=False; refuse any pickle global off an allowlist.",
             "description": "The service unpickles whatever sits in its model folder. A pickle is a program: loading a trojaned file runs the attacker's code in the service process.",
             "component": "Model loading (joblib.load of fraud_model.pkl, scaler.pkl)"},
        cwe=("CWE-494", "CWE-502"),
    ),
    Finding(
        id="MED-1", title="No input range or type validation",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:N",
        component="POST {predict} request parsing", owasp="ML01", atlas=("AML.T0043",),
        description="A service that refuses only missing fields lets out-of-range values, wrong types and extra fields reach the model, and may crash on strings, NaN or Infinity with a 500.",
        risk="Out-of-distribution inputs get confident answers the model was never trained to give, and "
             "crashes hide attacks in error noise.",
        remediation="Validate strictly: JSON only, a body size cap, exactly the fields {features}, no booleans for numbers, finite numbers, integer fields as integers, the ranges the model was trained on; answer 422 naming each bad field.",
        attack="Malformed bodies (an extra or missing field, an array, truncated JSON, text/plain, over 1 MiB); every edge of every range of {features} (each bound, one step inside and outside, NaN, Infinity, a string, a boolean, null, a fraction); parser-confusion bodies (deep nesting, duplicate keys, UTF-16/32, byte-order marks, lone surrogates, charset); the service's own OpenAPI document driven by schemathesis; generated JSON bodies.",
        own={"description": "Only missing fields are refused. Negative amounts, impossible counts, booleans and "
                            "extra fields reach the model; strings, NaN and Infinity crash the request with a 500."},
        control="validate_input", stage="Inference API (evasion)",
        cwe=("CWE-20",),
        black_box_attack="The same inputs over HTTP from the profile's schema, and the target's own OpenAPI document when the profile names one. Each must get a 4xx, never a 5xx or an answer.",
    ),
    Finding(
        id="MED-2", title="No inference query logging",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:N",
        component="Inference API operations", owasp="ML05", atlas=("AML.T0040",),
        description="A service that keeps no record of who asked what and what it answered leaves nothing to investigate.",
        risk="A probing or extraction campaign leaves no forensic trail, so it can be neither detected "
             "nor investigated. (No OWASP ML Top 10 entry covers logging itself; it is the detective "
             "control for ML05 model theft. The write-up's ML09 is Output Integrity Attack.)",
        remediation="One JSON line per request, accepted or rejected: UTC time, request id, client, key id, the inputs, the answer, status, reason, latency; appended with one write per record; shipped to a SIEM.",
        own={"remediation": "One JSON line per request, accepted or rejected: UTC time, request id, client, key id, features, prediction, probability, status, reason, latency; appended with one write per record; shipped to a SIEM.",
             "description": "The service keeps no record of who asked what and what it answered."},
        control="audit_log", stage="Inference API (extraction)",
        attack="500 queries, then the audit log is read back and checked record by record; one request of each status with spoofed address headers; and requests while the log file is renamed, deleted and its disk full under the running service.",
        cwe=("CWE-778",),
    ),
    Finding(
        id="MED-5", title="Probing and extraction go unnoticed",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N",
        component="Inference API operations", owasp="ML05", atlas=("AML.T0040", "AML.T0013"),
        description="Even with a log, nobody watches it: a client that walks one feature at a time toward the "
                    "decision boundary raises no alarm.",
        risk="Boundary probing, the first step of evasion and extraction, proceeds at leisure; the rate limit "
             "only slows it.",
        remediation="A per-client monitor over the audit stream: flag runs of single-feature changes "
                    "(sweeps, bisection) and PRADA-style distance anomalies; alert, and optionally block; "
                    "calibrate on benign traffic and report what it misses.",
        control="monitor", stage="Inference API (extraction)", also_stages=("Inference API (evasion)",),
        attack="The CRIT-2 boundary probing (sweeps and label-only bisection), then the audit stream is read "
               "for alerts; the same monitor's reaction to one-query evasion, random extraction and benign "
               "clients is measured alongside; blocking written as an operator might mistype it must stop the "
               "service at start.",
        cwe=("CWE-778",),
    ),
    Finding(
        id="HIGH-3", title="Label-only evasion: small input changes flip the {positive} decision",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:N/I:H/A:N",
        component="The model and its training data", owasp="ML01",
        atlas=("AML.T0015", "AML.T0043"),
        description="Labels alone reveal which small change to an input moves it out of the {positive} class; the "
                    "search below measures the cheapest one.",
        risk="Whoever makes the measured change gets past the {positive} decision whatever the rest of the input; "
             "no API control changes what the model decides.",
        remediation="Retrain on data where the classes overlap as they do in reality, constrain the model not to "
                    "rely on one feature (monotonic or feature-importance limits), add business rules on the "
                    "features that matter, and alert on clusters of just-past-boundary inputs.",
        attack="From the {positive} example, labels only: a boundary search (both ends of every feature, a bisection of each, pairs), its learned change tried on 20 inputs answered {positive} (one query each), a blind search in meaningful steps, and ART HopSkipJump inside each feature's typical range.",
        own={"title": "Label-only evasion: moving the hour defeats the model",
             "component": "The model (RandomForestClassifier) and its training data",
             "description": "In the seed recipe fraud happens only at night and legitimate spending only by day, "
                            "so the forest learned one rule: fraud if the hour is 5 or earlier. Labels alone reveal it.",
             "risk": "A fraudster who transacts at 06:00 or later passes whatever the amount, frequency or "
                     "country; no API control changes what the model decides.",
             "remediation": "Retrain on data where night-time and day-time behaviour overlap (real labelled "
                            "fraud), constrain the model not to rely on one feature (monotonic or feature-importance "
                            "limits), add business rules for amount and velocity, and alert on clusters of "
                            "just-past-boundary transactions."},
        control=None, stage="Inference API (evasion)", residual=True,
        severity_note="The id's High band reflects business impact; the vector (a valid key needed on the "
                      "hardened service, integrity high) scores Medium.",
        cwe=("CWE-1039",),
        black_box_attack="The same searches over HTTP within the budget: the boundary search first, HopSkipJump only while about 100 planned queries are left.",
    ),
    Finding(
        id="HIGH-4", title="Label-only model extraction fits inside the rate limit",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
        component="POST {predict} with every control on", owasp="ML05", atlas=("AML.T0024.002", "AML.T0005"),
        description="A model whose decision a simple copy trained on a window of label-only answers reproduces can be stolen within the rate limit.",
        risk="An attacker with one valid key copies the model in minutes and probes the copy offline, where "
             "no control sees it.",
        remediation="Per-key daily quotas as well as per-minute limits, query-pattern monitoring "
                    "(PRADA-style) feeding alerts, and a model whose decision is not recoverable from a few "
                    "random queries (more features, less separable training data).",
        own={"description": "The model is simple enough that a decision tree trained on a hundred label-only answers reproduces it; one rate-limit window is enough."},
        control=None, stage="Inference API (extraction)", residual=True,
        attack="One rate-limit window of label-only queries drawn around, between and along the boundary of the two examples and uniformly; a tree or linear copy (the attacker's cross-validated choice) scored on held-out inputs labelled by the target, as balanced accuracy against always-majority; in-process also the curve from 10 to 1,000 queries, with labels and with scores.",
        severity_note="The id's High band reflects that the copy is exact; the vector (a key needed, "
                      "confidentiality only) scores Medium.",
        cwe=("CWE-799",),
        black_box_attack="The window on an untouched key, the held-out labels from the shared budget; if every answer carries one label the run is not assessed (inconclusive), never called fixed.",
    ),
    Finding(
        id="MED-3", title="Training data can be poisoned without detection",
        cvss_vector="CVSS:3.1/AV:N/AC:H/PR:H/UI:N/S:U/C:N/I:H/A:N",
        component="Training data intake", owasp="ML02", atlas=("AML.T0020",),
        description="A training job that takes whatever rows it is given lets flipped labels and injected mislabelled rows go straight into the model.",
        risk="Whoever can write to the training data can teach the model to miss chosen {positive} cases or to "
             "flag harmless ones; the measured cost is in the evidence.",
        remediation="A data gate before training: schema and range checks, drift against a reference profile from "
                    "the trusted manifest, and label consistency by cross-validated disagreement; record the "
                    "dataset hash in the signed manifest so the model is tied to its data.",
        attack="Random label flips and injected rows shaped like the {positive} class labelled otherwise, at 1, 5 "
               "and 10 % of the training rows; recall and precision measured on clean held-out data.",
        own={"description": "The acquired pipeline trains on whatever rows it is given: flipped labels and injected mislabelled rows go straight into the model.",
             "component": "Training data intake (python -m fraudpipe train)"},
        control="data_gate", stage="Data collection",
        cwe=("CWE-345",),
    ),
    Finding(
        id="MED-4", title="Dependencies and artifacts not tied to exact versions",
        cvss_vector="CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:H",
        component="requirements.txt, model artifacts", owasp="ML06", atlas=("AML.T0010",),
        description="A dependency release can change what a saved model means; an unpinned install, or a model built with other library versions, loads silently.",
        risk="A malicious or merely incompatible release of a dependency runs inside training and serving; a "
             "model built elsewhere behaves differently from the one that was evaluated.",
        remediation="Pin every requirement with ==, transitive ones included; check installed = pinned; record library versions in the signed manifest and refuse to load on a mismatch; keep a CycloneDX SBOM with each build.",
        own={"attack": "Load artifacts whose signed manifest records another scikit-learn version; audit the pins and the installed versions; write the SBOM.",
             "remediation": "Pin every requirement with ==, transitive ones included; check installed = pinned; record library versions in the signed manifest and refuse to unpickle on a mismatch; keep a CycloneDX SBOM with each build.",
             "description": "A library release changes what a pickle means; an unpinned install or a model built with another scikit-learn version loads silently."},
        control="verify_artifacts", stage="Model training",
        attack="Load artifacts whose signed manifest records another library version; audit the pins and the installed versions; write the SBOM.",
        severity_note="The id keeps the write-up's Medium band; the vector (a malicious release runs with full "
                      "impact, though it needs high complexity and a user to install it) scores High.",
        cwe=("CWE-1357",),
    ),
    Finding(
        id="LOW-1", title="Training data exposure: PII and membership inference",
        cvss_vector="CVSS:3.1/AV:N/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N",
        component="Training data and the model's answers", owasp="ML04", atlas=("AML.T0040",),
        description="Whether the training data holds personal data, and whether the model's answers reveal "
                    "which {inputs} it was trained on.",
        risk="Real personal data in training sets is a breach waiting to happen; a model that memorises its "
             "training rows leaks them through its answers.",
        remediation="Keep synthetic or tokenised data in development; scan columns and values for PII before "
                    "training; limit model capacity and return labels only.",
        control=None, stage="Data storage",
        attack="A PII scan of column names and values; a confidence-threshold membership-inference attack on "
               "training versus held-out rows, and the same attack on a deliberately overfit model.",
        cwe=("CWE-359",),
    ),
    Finding(
        id="LOW-2", title="Model artifact and key hygiene",
        cvss_vector="CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:H/I:N/A:N",
        component="Artifact folder, signing key, audit log", owasp="ML05", atlas=("AML.T0024.002",),
        description="Whether the artifacts are read-only, the private key lives outside the artifact folder "
                    "with mode 0600, and no key material (signing key or API key) appears in any artifact or log.",
        risk="A writable artifact folder or a key beside the model lets one compromise both steal and re-sign "
             "the model.",
        remediation="Read-only artifacts, keys in a separate path with 0600, API keys stored only as hashes, "
                    "the key id (never the key) in logs.",
        control=None, stage="Model artifact",
        attack="Inspect modes and paths; search every artifact and the audit log for PEM blocks, the raw "
               "private key bytes and the API key; the same search over a folder where the key was copied in.",
        severity_note="The id keeps the write-up's Low band (it needs local access with high privileges); the "
                      "vector's confidentiality impact (the model and the signing key) scores Medium.",
        cwe=("CWE-732",),
    ),
    Finding(
        id="LOW-3", title="Serving path must agree with the model at its boundary",
        cvss_vector="CVSS:3.1/AV:N/AC:H/PR:L/UI:N/S:U/C:N/I:L/A:N",
        component="Serving model", owasp="ML09", atlas=("AML.T0043",),
        description="A serving path that computes differently from the evaluated model (another number type, a converted graph) answers differently near the model's decision thresholds.",
        own={"attack": "Every split threshold of the forest and the values just above and below it, sent through the API and compared with scikit-learn; the same set through the forest as a float32 graph.",
             "remediation": "Keep float64 thresholds and scikit-learn's float32 input cast; test labels and probabilities bit for bit on every split threshold and its neighbours.",
             "description": "A serving path that rounds differently from the evaluated model (a float32 graph, as skl2onnx's default) answers differently near split thresholds.",
             "component": "Serving model (flat-array forest)"},
        risk="Disagreement at the boundary is an output-integrity hole an attacker can aim at: inputs where "
             "the served answer is not the evaluated model's answer.",
        remediation="Serve exactly the evaluated model's arithmetic; test labels and scores bit for bit at every decision threshold and its neighbours.",
        control=None, stage="API response",
        attack="Every decision threshold of the model and the values just above and below it, sent through the API and compared with the evaluated model; the same set through a float32 version of it.",
        cwe=("CWE-1339",),
    ),
)

THREAT_STAGES: tuple[dict, ...] = (
    {"stage": "Data collection", "threat": "Data poisoning",
     "example": "Inject mislabelled rows to cut recall",
     "control": "Data-validation gate before training; dataset hash in the signed manifest",
     "own": {"example": "Inject mislabelled transactions to cut recall",
             "control": "Data-validation gate in train; dataset hash in the signed manifest"}},
    {"stage": "Data storage", "threat": "PII exposure, inversion, membership inference",
     "example": "Read training data holding real personal data",
     "control": "Synthetic data only; PII scan of columns and values",
     "own": {"example": "Read training data holding real card numbers"}},
    {"stage": "Feature engineering", "threat": "Preprocessing tampering",
     "example": "Modify the preprocessing (a scaler) to shift the decision boundary",
     "control": "Signed manifest; serving arrays without pickle",
     "own": {"example": "Modify scaler.pkl to shift the decision boundary"}},
    {"stage": "Model training", "threat": "Supply chain",
     "example": "A malicious library release exfiltrates training data",
     "control": "Every requirement pinned; installed = pinned; SBOM"},
    {"stage": "Model artifact", "threat": "Artifact tampering and theft",
     "example": "Replace the model file with a trojaned pickle",
     "control": "Ed25519-signed manifest, allowlist unpickler, read-only files, key outside artifacts",
     "own": {"example": "Replace fraud_model.pkl with a trojaned pickle"}},
    {"stage": "Inference API (extraction)", "threat": "Model extraction", "example": "Query the API to train a copy",
     "control": "Authentication, rate limit, audit log"},
    {"stage": "Inference API (evasion)", "threat": "Evasion",
     "example": "Craft an input just past the {positive} boundary", "control": "Input validation",
     "own": {"example": "Craft a transaction just past the fraud boundary"}},
    {"stage": "API response", "threat": "Output abuse and integrity",
     "example": "Use the score to calibrate bypass attempts",
     "control": "Return the label only; serving path exact against the model",
     "own": {"example": "Use fraud_probability to calibrate bypass attempts"}},
)
"""Each stage's wording follows the findings' rule: templates over the profile, ``own`` for fraudpipe."""

BY_ID: dict[str, Finding] = {f.id: f for f in FINDINGS}


def threat_map(findings: tuple[Finding, ...] = FINDINGS, profile: TargetProfile | None = None) -> tuple[dict, ...]:
    """Each stage's OWASP and ATLAS ids are those of the findings on it, so the map cannot disagree with a
    finding's page; a stage no finding covers lists none. Worded for ``profile`` (default: fraudpipe)."""
    if profile is None:
        from security_tests.targets.profile import fraudpipe_target

        profile = fraudpipe_target()
    words, rows = profile_words(profile), []
    for stage in THREAT_STAGES:
        entry = {key: value for key, value in stage.items() if key != "own"}
        if profile.own_service:
            entry.update(stage.get("own", {}))
        entry = {key: fill(value, words) for key, value in entry.items()}
        on_stage = [f for f in findings if entry["stage"] in f.stages]
        rows.append({**entry, "owasp": sorted({f.owasp for f in on_stage}),
                     "atlas": sorted({t for f in on_stage for t in f.atlas}),
                     "finding_ids": [f.id for f in on_stage]})
    return tuple(rows)


def finding(finding_id: str) -> Finding:
    return BY_ID[finding_id]
