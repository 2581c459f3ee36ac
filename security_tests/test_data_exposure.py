import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from fraudpipe.artifacts import load_artifacts
from fraudpipe.data import generate_transactions
from fraudpipe.model import split
from security_tests.attacks.exposure import membership_inference, scan_pii


@pytest.mark.white_box("needs the training data and the model's probabilities")
@pytest.mark.finding("LOW-1")
def test_training_data_holds_no_personal_data(evidence):
    frame = generate_transactions()
    result = scan_pii(frame)
    leaky = frame.head(50).assign(card_number=["4539578763621486"] * 50, email=["a.b@example.com"] * 50)
    detector = scan_pii(leaky)
    evidence.update({**result, "detector_on_leaky_copy": detector, "attack_succeeded": result["pii_found"],
                     "summary": f"{result['rows']} training rows: PII columns {result['pii_columns']}, card numbers "
                                f"{result['card_numbers']}, emails {result['emails']}; the same scan finds "
                                f"{detector['card_numbers']} cards and {detector['emails']} emails in a leaky copy"})
    assert detector["pii_found"] and detector["card_numbers"] == 50
    assert not result["pii_found"]


@pytest.mark.white_box("needs the training data and the model's probabilities")
@pytest.mark.finding("LOW-1")
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
    evidence.update({"victim": victim, "overfit_reference": overfit, "members": 400, "non_members": 400,
                     "attack_succeeded": victim["advantage"] > 0.1,
                     "summary": f"membership attack accuracy {victim['attack_accuracy']:.3f} on the victim "
                                f"(0.5 is chance); {overfit['attack_accuracy']:.3f} on a reference model that memorised random labels"})
    assert overfit["advantage"] > 0.2, "the attack must be able to detect memorisation"
    assert victim["advantage"] <= 0.1
