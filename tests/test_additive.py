"""AdditiveRegressor: bag label = intercept + sum of linear instance scores."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from milearn_core import AdditiveRegressor, load_model, save_model


@pytest.fixture(scope="module")
def planted():
    """Sparse count bags whose labels are 2.0 + the sum of known instance scores."""
    rng = np.random.RandomState(0)
    coef = rng.normal(size=40)
    bags = [sp.csr_matrix(rng.poisson(0.15, size=(rng.randint(1, 7), 40)).astype(float))
            for _ in range(300)]
    scores = [b @ coef for b in bags]
    y = np.array([s.sum() for s in scores]) + 2.0
    return bags, y, coef, scores


def test_recovers_instance_scores_and_intercept(planted):
    bags, y, coef, scores = planted
    model = AdditiveRegressor().fit(bags, y)
    assert model.alpha_ == 0.01  # noise-free data: the smallest penalty wins
    np.testing.assert_allclose(model.coef_, coef, atol=0.02)
    assert model.intercept_ == pytest.approx(2.0, abs=0.02)
    for got, true in zip(model.instance_contributions(bags[:20]), scores[:20]):
        np.testing.assert_allclose(got, true, atol=0.05)


def test_contributions_add_up_and_weights_follow_them(planted):
    bags, y, _, _ = planted
    model = AdditiveRegressor().fit(bags, y)
    pred = model.predict(bags)
    contributions = model.instance_contributions(bags)
    np.testing.assert_allclose([c.sum() for c in contributions], pred - model.intercept_)
    weights = model.instance_weights(bags)
    for w, c in zip(weights, contributions):
        assert w.sum() == pytest.approx(1.0)
        if len(c) > 1 and np.abs(c).sum() > 0:
            assert np.argmax(w) == np.argmax(np.abs(c))
    for a, b in zip(weights, model.instance_weights(bags, method="loo")):
        np.testing.assert_allclose(a, b, atol=1e-9)


def test_a_difference_splits_over_the_features_that_differ(planted):
    bags, y, coef, _ = planted
    model = AdditiveRegressor().fit(bags, y)
    a, b = bags[0], bags[1]
    features, values = model.difference_contributions(a, b)
    delta = np.asarray(a.sum(0) - b.sum(0)).ravel()
    np.testing.assert_array_equal(features, np.flatnonzero(delta))
    np.testing.assert_allclose(values, delta[features] * model.coef_[features])
    assert values.sum() == pytest.approx(float(model.predict([a])[0] - model.predict([b])[0]))


def test_dense_and_sparse_bags_give_the_same_model(planted):
    bags, y, _, _ = planted
    sparse = AdditiveRegressor().fit(bags, y)
    dense = AdditiveRegressor().fit([b.toarray() for b in bags], y)
    np.testing.assert_allclose(sparse.predict(bags), dense.predict([b.toarray() for b in bags]),
                               rtol=1e-4)


def test_multi_output_and_no_intercept(planted):
    bags, y, _, _ = planted
    targets = np.column_stack([y, -3 * y])
    model = AdditiveRegressor(fit_intercept=False).fit(bags, targets)
    assert model.predict(bags).shape == (300, 2)
    contributions = model.instance_contributions(bags[:5])
    assert contributions[0].shape == (bags[0].shape[0], 2)
    np.testing.assert_allclose(np.vstack([c.sum(axis=0) for c in contributions]),
                               model.predict(bags[:5]))


def test_sklearn_conventions_and_persistence(planted, tmp_path):
    bags, y, _, _ = planted
    model = AdditiveRegressor(alphas=(0.1, 1.0), cv=3)
    assert clone(model).get_params() == model.get_params() and not hasattr(model, "coef_")
    search = GridSearchCV(model, {"fit_intercept": [True, False]}, cv=3).fit(bags, y)
    assert search.best_params_ == {"fit_intercept": True}
    save_model(search.best_estimator_, tmp_path / "additive.safetensors")
    loaded = load_model(tmp_path / "additive.safetensors")
    np.testing.assert_array_equal(loaded.predict(bags), search.best_estimator_.predict(bags))


def test_needs_enough_bags_to_choose_alpha():
    with pytest.raises(ValueError, match="need at least 2 bags"):
        AdditiveRegressor().fit([np.ones((2, 3))], [1.0])
    with pytest.raises(ValueError, match="method must be"):
        AdditiveRegressor().fit([np.ones((1, 3)), np.zeros((1, 3))], [1.0, 0.0]).instance_weights(
            [np.ones((1, 3))], method="shap")
