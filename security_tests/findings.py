"""The findings catalog: the one place finding text lives. Tests, the HTML page and the PDF read it.

Severity is computed from the CVSS 3.1 vector. Where the honest vector scores outside the band the
original write-up gave, the id keeps the original band (ids are references people already use) and
``severity_note`` says why the computed severity differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from cvss import CVSS3

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
SEVERITY_ORDER = ("Critical", "High", "Medium", "Low", "None")


@dataclass(frozen=True)
class Finding:
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
    tags: tuple[str, ...] = field(default=())

    @cached_property
    def _cvss(self) -> CVSS3:
        return CVSS3(self.cvss_vector)

    @property
    def cvss_score(self) -> float:
        return float(self._cvss.scores()[0])

    @property
    def severity(self) -> str:
        return self._cvss.severities()[0]

    @property
    def id_band(self) -> str:
        return {"CRIT": "Critical", "HIGH": "High", "MED": "Medium", "LOW": "Low"}[self.id.split("-")[0]]

    @property
    def owasp_name(self) -> str:
        return f"{self.owasp} {OWASP_ML_2023[self.owasp]}"

    def as_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "severity": self.severity, "id_band": self.id_band,
                "cvss_vector": self.cvss_vector, "cvss_score": self.cvss_score, "component": self.component,
                "owasp": self.owasp_name, "atlas": [f"{t} {ATLAS[t]}" for t in self.atlas],
                "description": self.description, "risk": self.risk, "remediation": self.remediation,
                "control": self.control, "stage": self.stage, "attack": self.attack,
                "severity_note": self.severity_note, "residual": self.residual}


FINDINGS: tuple[Finding, ...] = (
    Finding(
        id="CRIT-1", title="Inference API has no authentication",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N",
        component="Flask inference API, POST /predict", owasp="ML05", atlas=("AML.T0040", "AML.T0024.002"),
        description="The acquired service answers /predict for any caller: no key, an empty key, a wrong "
                    "key and a key sent in the query string are all treated alike.",
        risk="Anyone who can reach the port can query the model without limit or attribution, which is "
             "the precondition for extraction, boundary probing and evasion calibration.",
        remediation="Require an X-API-Key header; store keys only as SHA-256 hashes; compare in constant "
                    "time; log the key id, never the key; issue keys with `python -m fraudpipe keys new`.",
        control="auth", stage="Inference API (extraction)",
        attack="10 requests cycling no key, an empty key, a wrong key and a key in the query string.",
        severity_note="The id keeps the write-up's Critical band; the honest vector (model confidentiality "
                      "high, integrity low, no availability impact) scores High.",
    ),
    Finding(
        id="CRIT-2", title="Fraud probability exposed in the API response",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N",
        component="POST /predict response body", owasp="ML01", atlas=("AML.T0040", "AML.T0043"),
        description="Each answer carries fraud_probability, a continuous signal that tells an attacker how "
                    "far a transaction is from the decision boundary.",
        risk="The probability lets an attacker calibrate evasions and model inversion with fewer queries. "
             "This run measures how much it adds over labels alone: for a boundary along one feature a "
             "label-only bisection needs only about log2(range / tolerance) queries.",
        remediation="Return the label only; write the probability to the audit log; treat label-only "
                    "probing as still possible and detect it (see the evasion and monitoring findings).",
        control="hide_probability", stage="API response",
        attack="Decision-boundary probing from {amount 800, 02:00, 20 transactions, foreign}: a sweep of each "
               "feature and a label-only bisection of where the label flips.",
        severity_note="The id keeps the write-up's Critical band; because a label-only search finds the same "
                      "boundary in a dozen queries, exposing the probability adds little and scores Medium.",
    ),
    Finding(
        id="HIGH-1", title="No rate limit on /predict",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:L",
        component="POST /predict", owasp="ML05", atlas=("AML.T0024.002", "AML.T0005", "AML.T0029"),
        description="The service answers every automated query at full speed, so an attacker can collect as "
                    "many labelled answers as it likes and train a copy of the model.",
        risk="Unbounded queries make model extraction and exhaustive probing cheap and let one client "
             "exhaust the service.",
        remediation="Limit per API key and per client address (flask-limiter, shared Redis storage when "
                    "several workers serve); answer 429 with Retry-After; ignore X-Forwarded-For unless a "
                    "trusted proxy count is configured. A limit slows extraction; it does not stop it.",
        control="rate_limit", stage="Inference API (extraction)",
        attack="500 automated queries, then a decision-tree surrogate trained on the answers; fidelity is "
               "agreement with the victim on held-out transactions.",
        severity_note="The id keeps the write-up's High band; the vector (partial confidentiality and "
                      "availability impact) scores Medium.",
    ),
    Finding(
        id="HIGH-2", title="No artifact integrity check at load time",
        cvss_vector="CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H",
        component="Model loading (joblib.load of fraud_model.pkl, scaler.pkl)", owasp="ML06",
        atlas=("AML.T0010", "AML.T0011.000", "AML.T0018"),
        description="The service unpickles whatever sits in its model folder. A pickle is a program: "
                    "loading a trojaned file runs the attacker's code in the service process.",
        risk="Anyone with write access to model storage gets code execution in the inference service and "
             "can swap in a backdoored model that keeps answering normally.",
        remediation="Sign a manifest of SHA-256 hashes with Ed25519 at training time; verify with a trusted "
                    "key kept outside the artifact folder; read, hash and deserialise the same bytes; serve "
                    "from arrays loaded with allow_pickle=False; refuse any pickle global off an allowlist.",
        control="verify_artifacts", stage="Model artifact",
        attack="Two tamperings of fraud_model.pkl: appended bytes, and a trojaned pickle that writes a marker "
               "file when unpickled and returns the genuine model.",
    ),
    Finding(
        id="MED-1", title="No input range or type validation",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:N",
        component="POST /predict request parsing", owasp="ML01", atlas=("AML.T0043",),
        description="Only missing fields are refused. Negative amounts, impossible counts, booleans and "
                    "extra fields reach the model; strings, NaN and Infinity crash the request with a 500.",
        risk="Out-of-distribution inputs get confident answers the model was never trained to give, and "
             "crashes hide attacks in error noise.",
        remediation="Validate strictly (pydantic): JSON only, a body size cap, exactly the four fields, no "
                    "booleans for numbers, finite numbers, integer fields as integers, ranges from the "
                    "pipeline's schema; answer 422 naming each bad field.",
        control="validate_input", stage="Inference API (evasion)",
        attack="amount -500, transactions_24h 99999, NaN, Infinity, a string, a boolean, hour 99, an extra field.",
    ),
    Finding(
        id="MED-2", title="No inference query logging",
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:N",
        component="Inference API operations", owasp="ML05", atlas=("AML.T0040",),
        description="The service keeps no record of who asked what and what it answered.",
        risk="A probing or extraction campaign leaves no forensic trail, so it can be neither detected "
             "nor investigated. (No OWASP ML Top 10 entry covers logging itself; it is the detective "
             "control for ML05 model theft. The write-up's ML09 is Output Integrity Attack.)",
        remediation="One JSON line per request, accepted or rejected: UTC time, request id, client, key id, "
                    "features, prediction, probability, status, reason, latency; appended with one write "
                    "per record; shipped to a SIEM.",
        control="audit_log", stage="Inference API (extraction)",
        attack="500 queries, then the audit log is read back and checked record by record.",
    ),
)

THREAT_MAP: tuple[dict, ...] = (
    {"stage": "Data collection", "threat": "Data poisoning", "owasp": "ML02", "atlas": ["AML.T0020"],
     "example": "Inject mislabelled transactions to cut recall",
     "control": "Data-validation gate in train; dataset hash in the signed manifest"},
    {"stage": "Data storage", "threat": "PII exposure, inversion, membership inference", "owasp": "ML03",
     "atlas": ["AML.T0040"], "example": "Read training data holding real card numbers",
     "control": "Synthetic data only; PII scan of columns and values"},
    {"stage": "Feature engineering", "threat": "Scaler tampering", "owasp": "ML10", "atlas": ["AML.T0018"],
     "example": "Modify scaler.pkl to shift the decision boundary",
     "control": "Signed manifest; serving arrays without pickle"},
    {"stage": "Model training", "threat": "Supply chain", "owasp": "ML06", "atlas": ["AML.T0010"],
     "example": "A malicious library release exfiltrates training data",
     "control": "Every requirement pinned; installed = pinned; SBOM"},
    {"stage": "Model artifact", "threat": "Artifact tampering and theft", "owasp": "ML06",
     "atlas": ["AML.T0011.000", "AML.T0018"], "example": "Replace fraud_model.pkl with a trojaned pickle",
     "control": "Ed25519-signed manifest, allowlist unpickler, read-only files, key outside artifacts"},
    {"stage": "Inference API (extraction)", "threat": "Model extraction", "owasp": "ML05",
     "atlas": ["AML.T0024.002", "AML.T0005", "AML.T0040"], "example": "Query the API to train a copy",
     "control": "Authentication, rate limit, audit log"},
    {"stage": "Inference API (evasion)", "threat": "Evasion", "owasp": "ML01", "atlas": ["AML.T0015", "AML.T0043"],
     "example": "Craft a transaction just past the fraud boundary", "control": "Input validation"},
    {"stage": "API response", "threat": "Output abuse and integrity", "owasp": "ML01",
     "atlas": ["AML.T0040", "AML.T0043"], "example": "Use fraud_probability to calibrate bypass attempts",
     "control": "Return the label only; serving path exact against the model"},
)

BY_ID: dict[str, Finding] = {f.id: f for f in FINDINGS}


def finding(finding_id: str) -> Finding:
    return BY_ID[finding_id]
