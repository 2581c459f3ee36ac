"""CRIT-2, the whole family: does anything in an answer carry the score?

Hiding ``fraud_probability`` is not enough if the score comes back under another name, in a header, as a
coarse bucket, or in the length of the body. So whole answers are compared: status, every body field
and every header, across transactions with very different probabilities but the same label. First one
transaction is sent twice, to find what varies on its own (a request id, a date); everything else must
be the same within a label, or it tells the caller something the label does not.
"""

from __future__ import annotations

import json

import numpy as np

from fraudpipe.data import FEATURE_NAMES, FEATURES, generate_transactions
from security_tests.attacks.client import Answer, Client
from security_tests.attacks.extraction import random_queries
from security_tests.contract import Evidence

PER_LABEL = 6


def _as_payload(row) -> dict:
    return {f.name: (int(row[i]) if f.kind == "int" else round(float(row[i]), 2)) for i, f in enumerate(FEATURES)}


def candidate_rows(n: int = 1500, seed: int = 31) -> np.ndarray:
    """Generator rows (what real traffic looks like) and uniform rows (which reach probabilities near 0.5)."""
    frame = generate_transactions(n, seed=seed)
    generated = frame[list(FEATURE_NAMES)].to_numpy(float)
    uniform = np.array([[q[name] for name in FEATURE_NAMES] for q in random_queries(n, seed=seed)], dtype=float)
    return np.vstack([generated, uniform])


def spread_by_probability(rows: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                          per_label: int = PER_LABEL) -> list[dict]:
    """Per label, rows whose probabilities lie as far apart as the model allows (evenly over the distinct values)."""
    chosen = []
    for label in (0, 1):
        index = np.flatnonzero(labels == label)
        distinct, first = np.unique(np.round(probabilities[index], 4), return_index=True)
        picks = first[np.unique(np.linspace(0, len(distinct) - 1, min(per_label, len(distinct))).round().astype(int))]
        chosen.extend(_as_payload(rows[index[i]]) for i in picks)
    return chosen


def spread_in_feature_space(n: int = 4 * PER_LABEL, seed: int = 31) -> list[dict]:
    """Without the model (a live target): uniform rows, far apart; the service's own labels group them."""
    return random_queries(n, seed=seed)


def fields(answer: Answer) -> dict[str, object]:
    """An answer flattened: status, each body field by path, each header by lower-case name."""
    flat: dict[str, object] = {"status": answer.status}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            flat[prefix] = value

    walk("body", answer.body)
    flat.update({f"header.{name.lower()}": value for name, value in answer.headers.items()})
    return flat


def _with_health(answer: Answer, health: Answer) -> Answer:
    """The answer plus what /health said right after it: a status page must not echo the last score."""
    headers = {**answer.headers, **{f"health-{k}": v for k, v in health.headers.items() if k.lower() != "x-request-id"}}
    return answer._replace(headers={**headers, "health-body": json.dumps(health.body, sort_keys=True)})


def _varying(answers: list[Answer]) -> set[str]:
    flats = [fields(a) for a in answers]
    names = set().union(*flats)
    return {name for name in names if len({repr(f.get(name, "<absent>")) for f in flats}) > 1}


def score_leak(client: Client, rows: list[dict]) -> Evidence:
    """Send one row twice (noise), then every row; any non-noise field that varies within a label leaks."""
    noise = _varying([client.predict(rows[0]), client.predict(rows[0])])
    answers = []
    for row in rows:
        answers.append(client.predict(row))
        answers[-1] = _with_health(answers[-1], client.get("/health"))
    refused = [a.status for a in answers if not a.ok]
    groups = {label: [a for a in answers if a.ok and a.label == label] for label in (0, 1)}
    leaks = {str(label): sorted(_varying(group) - noise) for label, group in groups.items() if len(group) > 1}
    examples = {label: {name: [fields(a).get(name) for a in groups[int(label)]][:PER_LABEL] for name in names[:3]}
                for label, names in leaks.items() if names}
    leaked = sorted({name for names in leaks.values() for name in names})
    return Evidence(
        attack_succeeded=bool(leaked), queries=2 * len(rows) + 2,
        summary=(f"{len(rows)} transactions with different probabilities; within one label "
                 + (f"these vary with the transaction: {', '.join(leaked)}" if leaked else
                    "every answer is identical (status, body, headers, /health)")
                 + f" (ignored as varying on their own: {', '.join(sorted(noise)) or 'none'})"),
        measurements={"rows": len(rows), "answers_legitimate": len(groups[0]), "answers_fraud": len(groups[1]),
                      "fields_varying_within_a_label": len(leaked)},
        details={"refused_statuses": refused, "varies_on_its_own": sorted(noise), "varies_within_a_label": leaks,
                 "examples": examples})


def victim_spread(compiled, rows: np.ndarray | None = None) -> tuple[list[dict], dict]:
    """White-box row choice: the victim's own probabilities pick rows with a wide spread per label."""
    rows = candidate_rows() if rows is None else rows
    labels, probabilities = compiled.predict(rows)
    chosen = spread_by_probability(rows, np.asarray(labels), np.asarray(probabilities))
    chosen_labels, chosen_p = compiled.predict(np.array([[r[n] for n in FEATURE_NAMES] for r in chosen], dtype=float))
    spread = {str(label): sorted({round(float(p), 4) for p, lab in zip(chosen_p, chosen_labels) if lab == label})
              for label in (0, 1)}
    return chosen, spread

