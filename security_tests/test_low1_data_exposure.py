"""LOW-1 — training data exposure: the training data must hold no personal data, and the model's answers
must not tell which rows trained it (membership inference at chance). Needs the training data and the
model's scores, so it runs in-process only."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from fraudpipe.artifacts import load_artifacts
from fraudpipe.data import generate_transactions
from fraudpipe.model import split
from security_tests.attacks.data_exposure import membership_exposure, membership_inference, pii_exposure
from security_tests.markers import runs


@pytest.mark.white_box("needs the training data and the model's probabilities")
@pytest.mark.finding("LOW-1")
@runs(pii_exposure)
def test_training_data_holds_no_personal_data(evidence):
    found = evidence.record(pii_exposure(generate_transactions()))
    detector = found.details["detector_on_leaky_copy"]
    assert detector["pii_found"] and detector["card_numbers"] == 50
    assert not found.attack_succeeded


@pytest.mark.white_box("needs the training data and the model's probabilities")
@pytest.mark.finding("LOW-1")
@runs(membership_exposure)
def test_answers_do_not_reveal_training_membership(trained, evidence):
    """Measured with the probability (the inherited answer, the attacker's best case); the same attack on a
    reference model that memorised random labels shows it would notice memorisation."""
    frame = generate_transactions()
    X_train, X_test, y_train, y_test = split(frame)
    compiled = load_artifacts(trained.artifacts_dir, trained.trusted_key, pickles=False).compiled
    victim = membership_inference(compiled.predict_proba, X_train, y_train, X_test, y_test)
    rng = np.random.default_rng(0)
    random_train, random_test = rng.integers(0, 2, len(y_train)), rng.integers(0, 2, len(y_test))
    overfit_model = RandomForestClassifier(n_estimators=50, random_state=0, n_jobs=1).fit(X_train, random_train)
    overfit = membership_inference(lambda X: overfit_model.predict_proba(X)[:, 1], X_train, random_train,
                                   X_test, random_test)
    found = evidence.record(membership_exposure(victim, overfit))
    assert overfit["advantage"] > 0.2, "the attack must be able to detect memorisation"
    assert not found.attack_succeeded
