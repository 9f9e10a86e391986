"""BagKernelClassifier: calibrated probabilities, exact log-odds contributions, safe files."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from milearn_core import BagError, BagKernelClassifier, ModelFileError, load_model
from qsarmil import QSARModel
from qsarmil.featurize import MoleculeBagger


def key_instance_bags(n_bags: int, n_classes: int = 2, seed: int = 0, positive_share: float = 0.5):
    """Count bags (nonnegative integers); a class c > 0 bag holds one instance rich in feature c."""
    rng = np.random.RandomState(seed)
    bags, labels = [], []
    for _ in range(n_bags):
        label = int(rng.rand() < positive_share) if n_classes == 2 else rng.randint(n_classes)
        bag = rng.poisson(0.6, size=(rng.randint(2, 6), 8)).astype(float)
        bag[:, 1:n_classes] = rng.rand(len(bag), n_classes - 1) < 0.1  # rare elsewhere
        if label:
            bag[rng.randint(len(bag)), label] += 3
        bags.append(bag)
        labels.append(label)
    return bags, np.array(labels)


@pytest.fixture(scope="module")
def binary():
    bags, y = key_instance_bags(160)
    return BagKernelClassifier().fit(bags[:120], y[:120]), bags[120:], y[120:]


def test_it_learns_the_key_instance_rule(binary):
    model, bags, y = binary
    assert roc_auc_score(y, model.predict_proba(bags)[:, 1]) > 0.95
    assert np.mean(model.predict(bags) == y) > 0.85


def test_probabilities_are_a_distribution_and_predict_is_their_argmax(binary):
    model, bags, _ = binary
    proba = model.predict_proba(bags)
    assert proba.shape == (len(bags), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(bags), model.classes_[proba.argmax(axis=1)])
    logit = model.decision_function(bags)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-logit)), rtol=1e-12)


@pytest.mark.parametrize("kernels", [("minmax",), ("linear",), ("minmax+linear",)])
def test_log_odds_split_exactly_over_instances(kernels):
    bags, y = key_instance_bags(80, seed=1)
    model = BagKernelClassifier(kernels=kernels).fit(bags, y)
    test = [sp.csr_matrix(b) for b in key_instance_bags(20, seed=2)[0]]
    total = [model.contribution_intercept_ + c.sum() for c in model.instance_contributions(test)]
    np.testing.assert_allclose(total, model.decision_function(test), atol=1e-6)


def test_a_log_odds_difference_splits_exactly_over_features(binary):
    model, test, _ = binary
    for a, b in zip(test[:6], test[6:12]):
        features, values = model.difference_contributions(a, b)
        log_odds = model.decision_function([a, b])
        assert values.sum() == pytest.approx(log_odds[0] - log_odds[1], abs=1e-10)
        assert set(features) == set(np.flatnonzero(a.sum(0) != b.sum(0)))


def test_three_classes_one_vs_rest_with_exact_logits():
    bags, y = key_instance_bags(240, n_classes=3, seed=3)
    model = BagKernelClassifier().fit(bags[:180], y[:180])
    assert list(model.classes_) == [0, 1, 2]
    proba = model.predict_proba(bags[180:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(model.predict(bags[180:]) == y[180:]) > 0.8
    logits = model.decision_function(bags[180:])
    parts = model.instance_contributions(bags[180:])
    assert parts[0].shape == (len(bags[180]), 3)
    np.testing.assert_allclose([model.contribution_intercept_ + c.sum(axis=0) for c in parts], logits,
                               atol=1e-6)


def test_probabilities_follow_the_real_class_frequencies():
    bags, y = key_instance_bags(300, seed=4, positive_share=0.2)
    model = BagKernelClassifier().fit(bags, y)
    assert abs(model.predict_proba(bags)[:, 1].mean() - y.mean()) < 0.05


def test_balanced_weights_change_the_fit_on_imbalanced_classes():
    bags, y = key_instance_bags(150, seed=5, positive_share=0.15)
    weighted = BagKernelClassifier(kernels=("linear",)).fit(bags, y)
    plain = BagKernelClassifier(kernels=("linear",), class_weight=None).fit(bags, y)
    assert not np.allclose(weighted.linear_coef_, plain.linear_coef_)


def test_text_labels_and_bad_inputs():
    bags, y = key_instance_bags(60, seed=6)
    labels = np.where(y == 1, "active", "inactive")
    model = BagKernelClassifier().fit(bags, labels)
    assert list(model.classes_) == ["active", "inactive"]
    assert set(model.predict(bags)) <= {"active", "inactive"}
    with pytest.raises(ValueError, match="single class"):
        BagKernelClassifier().fit(bags, np.zeros(len(bags), dtype=int))
    lonely = y.copy()
    lonely[:] = 0
    lonely[0] = 1
    with pytest.raises(BagError, match="class 1 has 1 bag; leave-one-out calibration needs at least 2"):
        BagKernelClassifier().fit(bags, lonely)
    with pytest.raises(ValueError, match="class_weight must be"):
        BagKernelClassifier(class_weight="auto").fit(bags, y)
    with pytest.raises(ValueError, match="nonnegative"):
        BagKernelClassifier().fit([-b for b in bags], y)


def test_a_subset_choice_still_solves_on_every_bag():
    bags, y = key_instance_bags(120, seed=7)
    model = BagKernelClassifier(selection_size=50).fit(bags, y)
    assert model.dual_coef_.shape == (120,)
    assert roc_auc_score(y, model.predict_proba(bags)[:, 1]) > 0.9


def test_save_and_load_give_the_same_probabilities(tmp_path, binary):
    model, bags, _ = binary
    model.save(tmp_path / "m.safetensors")
    loaded = BagKernelClassifier.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.predict_proba(bags), model.predict_proba(bags))
    assert clone(loaded).get_params() == model.get_params()


def test_a_calibration_that_does_not_match_the_classes_is_refused(tmp_path, binary, monkeypatch):
    model, _, _ = binary
    broken = clone(model).fit(*key_instance_bags(40, seed=8))
    broken.calibration_coef_ = np.ones((3, 1))
    with pytest.raises(ValueError, match="calibration_coef_ has shape"):
        broken.save(tmp_path / "b.safetensors")
    from milearn_core import safe_state

    schema = safe_state._registry()["milearn_core.BagKernelClassifier"]
    monkeypatch.setitem(safe_state._REGISTRY, schema.name,
                        safe_state.StateSchema(schema.name, schema.cls, schema.fields, None))
    broken.save(tmp_path / "b.safetensors")
    monkeypatch.setitem(safe_state._REGISTRY, schema.name, schema)
    with pytest.raises(ModelFileError, match="calibration_coef_ has shape"):
        load_model(tmp_path / "b.safetensors")


SMILES = ["CCO", "CCN", "c1ccccc1O", "c1ccccc1N", "CC(=O)O", "CC(=O)N", "c1ccccc1C(=O)O",
          "c1ccc(O)cc1O", "CCCCO", "CCCCN", "c1ccncc1", "c1ccncc1O", "OCC(O)CO", "NCC(N)CN",
          "c1ccc2ccccc2c1", "Oc1ccc2ccccc2c1"]


def test_qsarmodel_classifies_fragments_with_the_kernel_classifier_from_summed_bags(tmp_path):
    labels = ["yes" if "O" in s else "no" for s in SMILES]
    model = QSARModel(bagger=MoleculeBagger(progress=False), task="classification").fit(SMILES, labels)
    assert isinstance(model.estimator_, BagKernelClassifier)
    assert model._sums_suffice(False)
    explanation = model.explain("c1ccc(O)cc1CCO")
    total = explanation.baseline + explanation.instances.contribution.sum()
    logit = model.estimator_.decision_function(model.bagger_.transform_summed(["c1ccc(O)cc1CCO"]))
    assert total == pytest.approx(float(logit[0]), abs=1e-6)
    assert explanation.target_name == "log-odds of class yes"
    proba = model.predict_proba(["c1ccc(O)cc1CCO"])[0, 1]
    assert proba == pytest.approx(1 / (1 + np.exp(-total)), abs=1e-6)
    model.save(tmp_path / "m")
    again = QSARModel.load(tmp_path / "m")
    np.testing.assert_array_equal(again.predict_proba(SMILES), model.predict_proba(SMILES))


def test_the_report_says_the_contributions_split_the_log_odds(tmp_path):
    from qsarmil.report import render_report

    labels = ["yes" if "O" in s else "no" for s in SMILES]
    model = QSARModel(bagger=MoleculeBagger(progress=False), task="classification").fit(SMILES, labels)
    page = render_report(model, SMILES[:3])
    assert "Log-odds of class yes = baseline" in page
    assert "red atoms raise the probability of yes" in page  # atom-level by default
