"""MED-5 variants: boundary probing disguised against a monitor that compares each query with the
previous one only.

The probe is the CRIT-2 one on ``hour_of_day`` from the fraud example (a sweep of all 24
hours, or a label-only bisection); the client it talks through disguises each probe with random noise
on another feature, or sends random decoy transactions (uniform over plausible ranges) between probes.
"""

from __future__ import annotations

import numpy as np

from fraudpipe.data import FEATURES, FRAUD_EXAMPLE
from security_tests.attacks.client import Answer, Client
from security_tests.attacks.probing import bisect_flip
from security_tests.contract import Evidence


class DisguisedClient:
    """Adds up to ``noise`` dollars to the amount and sends ``decoys`` random transactions after each probe."""

    def __init__(self, client: Client, noise: float = 0.0, decoys: int = 0, seed: int = 7) -> None:
        self.client, self.target, self.noise, self.decoys = client, client.target, noise, decoys
        self.sent = 0
        self._rng = np.random.default_rng(seed)

    def predict(self, payload=None, headers=None, **kwargs) -> Answer:
        if self.noise and isinstance(payload, dict):
            payload = {**payload, "amount": round(payload["amount"] + self._rng.uniform(-self.noise, self.noise), 2)}
        answer = self.client.predict(payload, headers, **kwargs)
        self.sent += 1
        for _ in range(self.decoys):
            self.client.predict(self._decoy())
            self.sent += 1
        return answer

    def get(self, path: str, headers: dict | None = None) -> Answer:
        return self.client.get(path, headers)

    def _decoy(self) -> dict:
        rng = self._rng
        return {"amount": round(float(rng.uniform(1, 2000)), 2), "hour_of_day": int(rng.integers(0, 24)),
                "transactions_24h": int(rng.integers(0, 31)), "foreign_transaction": int(rng.integers(0, 2))}


def _hour_sweep(client: Client) -> dict:
    labels = [client.predict(dict(FRAUD_EXAMPLE, hour_of_day=hour)).label for hour in range(24)]
    flips = [hour for hour in range(1, 24) if None not in labels[hour - 1:hour + 1] and labels[hour] != labels[hour - 1]]
    return {"flipped": bool(flips), "first_flipped_value": flips[0] if flips else None}


def _hour_bisection(client: Client) -> dict:
    def ask(name, value):
        return client.predict(dict(FRAUD_EXAMPLE, **{name: value})).label, None

    return bisect_flip(ask, FEATURES[1], FRAUD_EXAMPLE["hour_of_day"], 23, 1)


PROBES = {"sweep": _hour_sweep, "bisection": _hour_bisection}
DISGUISES = {
    "noisy sweep (amount +-$10)": {"probe": "sweep", "noise": 10.0},
    "decoy-interleaved sweep (1 random decoy per probe)": {"probe": "sweep", "decoys": 1},
}
RESIDUAL_DISGUISES = {
    "wide-noise sweep (amount +-$200)": {"probe": "sweep", "noise": 200.0},
    "sparse sweep (3 random decoys per probe)": {"probe": "sweep", "decoys": 3},
    "noisy label-only bisection (amount +-$10)": {"probe": "bisection", "noise": 10.0},
    "decoy-interleaved bisection (1 per probe)": {"probe": "bisection", "decoys": 1},
}


def disguised_probing(client: Client, probe: str, noise: float = 0.0, decoys: int = 0) -> Evidence:
    """One disguised probe of the hour boundary; whether it found the flip and what it cost."""
    disguised = DisguisedClient(client, noise=noise, decoys=decoys)
    found = PROBES[probe](disguised)
    return Evidence(attack_succeeded=bool(found["flipped"]), queries=disguised.sent,
                    summary=f"{disguised.sent} queries; " + (f"label flips at hour {found['first_flipped_value']}"
                                                             if found["flipped"] else "no flip found"),
                    measurements={"first_flipped_value": found["first_flipped_value"]})
