"""Bag kernels: the MinMax kernel, kernel ridge on bags, exact instance contributions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from milearn_core import BagKernelRegressor, load_model, minmax_kernel


def _brute_minmax(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    mins = np.minimum(A[:, None, :], B[None]).sum(-1).astype(float)
    maxs = np.maximum(A[:, None, :], B[None]).sum(-1)
    return np.divide(mins, maxs, out=np.ones_like(mins), where=maxs > 0)


def _count_bags(n_bags: int, n_features: int = 30, seed: int = 0, density: float = 0.15) -> list:
    rng = np.random.RandomState(seed)
    bags = []
    for _ in range(n_bags):
        counts = rng.poisson(1.0, (rng.randint(1, 6), n_features)) * (rng.rand(1, n_features) < density)
        bags.append(sp.csr_matrix(counts.astype(np.float32)))
    return bags


def test_minmax_kernel_matches_the_definition_on_counts_and_reals():
    rng = np.random.RandomState(1)
    A = rng.poisson(1.5, (25, 40)) * (rng.rand(25, 40) < 0.3)
    B = (rng.rand(12, 40) * 3) * (rng.rand(12, 40) < 0.3)  # non-integer values too
    A[3] = 0  # an empty row: similarity 0 to any non-empty row, 1 to itself
    np.testing.assert_allclose(minmax_kernel(A, B), _brute_minmax(A, B), atol=1e-12)
    np.testing.assert_allclose(minmax_kernel(sp.csr_matrix(A)), _brute_minmax(A, A), atol=1e-12)
    K = minmax_kernel(B)
    np.testing.assert_allclose(K, K.T)
    np.testing.assert_allclose(np.diag(K), 1.0)


def test_minmax_kernel_refuses_negative_values_and_mismatched_widths():
    with pytest.raises(ValueError, match="nonnegative"):
        minmax_kernel(np.array([[1.0, -2.0]]))
    with pytest.raises(ValueError, match="features"):
        minmax_kernel(np.ones((2, 3)), np.ones((2, 4)))


@pytest.mark.parametrize("kernels", [("minmax",), ("linear",), ("minmax+linear",)])
def test_instance_contributions_add_up_to_the_prediction(kernels):
    bags = _count_bags(60)
    rng = np.random.RandomState(2)
    y = np.array([np.tanh(b.toarray()[:, :5].sum()) + 0.1 * rng.randn() for b in bags])
    model = BagKernelRegressor(kernels=kernels).fit(bags[:45], y[:45])
    test = bags[45:]
    contributions = model.instance_contributions(test)
    assert [len(c) for c in contributions] == [b.shape[0] for b in test]
    np.testing.assert_allclose([c.sum() for c in contributions], model.predict(test) - model.intercept_,
                               atol=1e-10)
    weights = model.instance_weights(test)
    np.testing.assert_allclose([w.sum() for w in weights], 1.0)


@pytest.mark.parametrize("kernels", [("minmax",), ("linear",), ("minmax+linear",)])
def test_a_difference_splits_exactly_over_the_features_that_differ(kernels):
    bags = _count_bags(60, seed=4)
    rng = np.random.RandomState(5)
    y = np.array([np.tanh(b.toarray()[:, :5].sum()) + 0.1 * rng.randn() for b in bags])
    model = BagKernelRegressor(kernels=kernels).fit(bags[:45], y[:45])
    for a, b in zip(bags[45:52], bags[52:59]):
        features, values = model.difference_contributions(a, b)
        sum_a, sum_b = a.toarray().sum(0), b.toarray().sum(0)
        np.testing.assert_array_equal(features, np.flatnonzero(sum_a != sum_b))
        assert values.sum() == pytest.approx(float(np.diff(model.predict([b, a]))[0]), abs=1e-10)
    # An empty bag against a training set with an empty bag (similarity 1 by convention).
    with_empty = [*bags[:44], sp.csr_matrix((2, 30))]
    empty_model = BagKernelRegressor(kernels=kernels).fit(with_empty, y[:45])
    empty, full = np.zeros((1, 30)), bags[50]
    _, values = empty_model.difference_contributions(empty, full)
    assert values.sum() == pytest.approx(float(np.diff(empty_model.predict([full, empty]))[0]),
                                         abs=1e-10)
    # One changed count: the whole difference is that feature's.
    a = bags[50].toarray()
    b = a.copy()
    b[0, 7] += 2
    features, values = model.difference_contributions(a, b)
    assert list(features) == [7]
    assert values[0] == pytest.approx(model.predict([a])[0] - model.predict([b])[0], abs=1e-10)


def test_two_outputs_split_exactly_too():
    bags = _count_bags(40, seed=3)
    y = np.array([[b.sum(), b.toarray()[:, 0].sum()] for b in bags])
    model = BagKernelRegressor(kernels=("minmax",)).fit(bags, y)
    pred = model.predict(bags[:5])
    assert pred.shape == (5, 2)
    contributions = model.instance_contributions(bags[:5])
    np.testing.assert_allclose(np.array([c.sum(axis=0) for c in contributions]), pred - model.intercept_,
                               atol=1e-10)


def test_leave_one_out_error_equals_refitting_without_each_bag():
    bags = _count_bags(30, seed=4)
    y = np.array([np.sqrt(b.sum()) for b in bags])
    model = BagKernelRegressor(kernels=("minmax",), alphas=(0.3,)).fit(bags, y)
    sums = np.array([b.toarray().sum(axis=0) for b in bags])
    K, yc = minmax_kernel(sums), y - y.mean()
    residuals = []
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        dual = np.linalg.solve(K[np.ix_(rest, rest)] + 0.3 * np.eye(rest.sum()), yc[rest])
        residuals.append(yc[i] - K[i, rest] @ dual)
    assert model.loo_errors_["minmax"] == pytest.approx(np.mean(np.square(residuals)), rel=1e-8)


def test_an_additive_target_picks_the_linear_kernel_and_recovers_instance_scores():
    bags = _count_bags(120, seed=5)
    score = np.random.RandomState(6).randn(30)
    y = np.array([(b @ score).sum() for b in bags])
    model = BagKernelRegressor().fit(bags[:100], y[:100])
    assert model.kernel_ == "linear"
    truth = [np.asarray(b @ score).ravel() for b in bags[100:]]
    found = model.instance_contributions(bags[100:])
    spread = np.concatenate(truth).std()
    assert max(np.abs(t - f).max() for t, f in zip(truth, found)) < 0.05 * spread


def test_a_clustered_nonlinear_target_picks_minmax_and_far_bags_return_to_the_mean():
    # Six kinds of bag (thinned copies of a prototype); the label is the kind's value times the
    # log of the bag size: not a sum over instances, but close bags have close labels.
    rng = np.random.RandomState(0)
    prototypes = rng.poisson(2.0, (6, 30)) * (rng.rand(6, 30) < 0.4)
    values = rng.randn(6)
    bags, y = [], []
    for _ in range(150):
        kind, size = rng.randint(6), rng.randint(1, 5)
        bags.append(sp.csr_matrix(rng.binomial(prototypes[kind], 0.7, (size, 30)).astype(np.float32)))
        y.append(values[kind] * np.log1p(size))
    y = np.array(y)
    model = BagKernelRegressor().fit(bags, y)
    assert model.kernel_ == "minmax"
    assert model.loo_errors_["minmax"] < 0.5 * model.loo_errors_["linear"]
    # A bag 50x larger than any seen: the prediction stays within the training labels' range,
    # where a linear model would grow with the counts.
    huge = sp.csr_matrix(np.full((1, 30), 50.0, dtype=np.float32))
    assert y.min() <= model.predict([huge])[0] <= y.max()


def test_selection_on_a_subset_is_seeded_and_the_fit_uses_every_bag():
    bags = _count_bags(80, seed=9)
    y = np.array([np.sqrt(b.sum()) for b in bags])
    small = BagKernelRegressor(kernels=("minmax",), selection_size=30, random_state=1).fit(bags, y)
    again = BagKernelRegressor(kernels=("minmax",), selection_size=30, random_state=1).fit(bags, y)
    assert small.alpha_ == again.alpha_ and len(small.dual_coef_) == 80
    np.testing.assert_array_equal(small.predict(bags), again.predict(bags))
    with pytest.raises(ValueError, match="selection_size"):
        BagKernelRegressor(selection_size=1).fit(bags, y)


def test_symmetric_kernel_over_several_blocks_matches_the_definition():
    # More rows than one block: the lower blocks are computed, the upper ones mirrored.
    rng = np.random.RandomState(4)
    A = rng.poisson(1.0, (600, 35)) * (rng.rand(600, 35) < 0.2)
    np.testing.assert_allclose(minmax_kernel(sp.csr_matrix(A)), _brute_minmax(A, A), atol=1e-12)


def test_a_kernel_chosen_on_a_subset_is_refitted_on_every_bag():
    # Selection on 40 of 120 bags; the chosen kernel is then computed on all 120 and solved,
    # exactly as a fit that is given that kernel and penalty outright.
    bags = _count_bags(120, seed=5)
    y = np.array([(b @ np.random.RandomState(6).randn(30)).sum() for b in bags])
    chosen = BagKernelRegressor(selection_size=40).fit(bags, y)
    assert chosen.kernel_ == "linear"
    given = BagKernelRegressor(kernels=(chosen.kernel_,), alphas=(chosen.alpha_,),
                               selection_size=None).fit(bags, y)
    np.testing.assert_allclose(chosen.predict(bags), given.predict(bags), rtol=1e-10)
    assert len(chosen.dual_coef_) == 120


def test_bad_settings_are_refused_by_name():
    bags = _count_bags(10)
    y = np.arange(10.0)
    with pytest.raises(ValueError, match="kernels"):
        BagKernelRegressor(kernels=("rbf",)).fit(bags, y)
    with pytest.raises(ValueError, match="alphas"):
        BagKernelRegressor(alphas=(0.0,)).fit(bags, y)
    with pytest.raises(ValueError, match="nonnegative"):
        BagKernelRegressor().fit([-b for b in bags], y)


def test_clone_and_save_load_keep_predictions(tmp_path):
    bags = _count_bags(50, seed=8)
    y = np.array([np.log1p(b.sum()) for b in bags])
    model = BagKernelRegressor(kernels=("minmax", "minmax+linear")).fit(bags, y)
    assert clone(model).get_params() == model.get_params()
    model.save(tmp_path / "kernel.safetensors")
    loaded = load_model(tmp_path / "kernel.safetensors")
    np.testing.assert_array_equal(loaded.predict(bags), model.predict(bags))
    for a, b in zip(loaded.instance_contributions(bags[:5]), model.instance_contributions(bags[:5])):
        np.testing.assert_array_equal(a, b)
