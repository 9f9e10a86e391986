"""The bag-kernel models on landmarks (milearn_core.estimators.approx): the same model as the
exact one when every bag is a landmark, exact leave-one-out values and contributions for the
fitted model, and files that round-trip (older ones without the new parameters too)."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from milearn_core import BagKernelClassifier, BagKernelRegressor, load_model, minmax_kernel
from milearn_core.estimators.approx import landmark_count, landmark_fit
from milearn_core.persist import ModelFileError


def _data(n=80, n_features=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.poisson(0.6, size=(n, n_features)).astype(float)
    y = X[:, :5] @ rng.normal(size=5) + np.minimum(X[:, 5], X[:, 6]) + rng.normal(0, 0.1, n)
    return [sp.csr_matrix(row[None, :]) for row in X], X, y


@pytest.mark.parametrize("kernel", ["minmax", "linear", "minmax+linear"])
def test_every_bag_a_landmark_gives_the_exact_model(kernel):
    bags, _, y = _data(n=60, n_features=100)  # full rank: more features than bags
    exact = BagKernelRegressor(kernels=(kernel,), alphas=(0.1,), exact_limit=None).fit(bags, y)
    landmarks = BagKernelRegressor(kernels=(kernel,), alphas=(0.1,), exact_limit=10,
                                   n_landmarks=len(bags)).fit(bags, y)
    assert exact.n_landmarks_ is None and landmarks.n_landmarks_ == len(bags)
    np.testing.assert_allclose(landmarks.predict(bags), exact.predict(bags), atol=1e-6)
    np.testing.assert_allclose(landmarks.loo_predictions_, exact.loo_predictions_, atol=1e-5)


def test_leave_one_out_values_equal_refits_on_the_same_landmarks():
    _, X, y = _data(n=50)
    landmarks = np.arange(0, 50, 3)
    alpha = 0.2
    K = minmax_kernel(X, X[landmarks])
    K_mm = minmax_kernel(X[landmarks])
    beta, loo = landmark_fit(sp.csr_matrix(X), y[:, None], landmarks, alpha,
                             lambda A, B: minmax_kernel(A, B))
    for i in (0, 3, 17, 49):  # landmark rows (0, 3) stay basis functions when left out
        keep = np.arange(50) != i
        refit = np.linalg.solve(K[keep].T @ K[keep] + alpha * K_mm, K[keep].T @ y[keep])
        assert y[i] - loo[i, 0] == pytest.approx(K[i] @ refit, abs=1e-6)
    np.testing.assert_allclose(K @ beta[:, 0], np.linalg.solve(
        K.T @ K + alpha * K_mm, K.T @ y) @ K.T, atol=1e-6)


@pytest.mark.parametrize("model", [BagKernelRegressor(exact_limit=40, n_jobs=2),
                                   BagKernelClassifier(exact_limit=40)])
def test_contributions_add_up_and_files_round_trip(model, tmp_path):
    bags, _, y = _data(n=120)
    target = y if isinstance(model, BagKernelRegressor) else np.where(y > np.median(y), "a", "b")
    model.fit(bags, target)
    assert model.n_landmarks_ == landmark_count(120) == 60
    assert len(model.train_indptr_) - 1 == 60
    rows = model.landmark_rows_
    assert len(rows) == 60 and np.all(np.diff(rows) > 0)
    assert (model._train() != sp.vstack([bags[i] for i in rows])).nnz == 0  # those bags
    scores = (model.predict(bags) if isinstance(model, BagKernelRegressor)
              else model.decision_function(bags))
    offset = (model.intercept_ if isinstance(model, BagKernelRegressor)
              else model.contribution_intercept_)
    sums = np.array([c.sum() for c in model.instance_contributions(bags)]) + offset
    np.testing.assert_allclose(sums, scores, atol=1e-6)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.n_landmarks_ == 60
    np.testing.assert_array_equal(loaded.landmark_rows_, rows)
    np.testing.assert_array_equal(loaded.predict(bags), model.predict(bags))


def _rewrite(path, edit):
    """Rewrite a classical model file's JSON state through ``edit(state_pairs)``."""
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        config = json.loads(f.metadata()["milearn_core"])
    edit(config["state"]["state"]["__dict__"])
    save_file(load_file(str(path)), str(path), metadata={"milearn_core": json.dumps(config)})


def test_a_file_saved_before_the_landmark_parameters_loads_with_their_defaults(tmp_path):
    bags, _, y = _data()
    BagKernelRegressor().fit(bags, y).save(tmp_path / "old.safetensors")
    added = {"exact_limit", "n_landmarks", "n_jobs", "progress", "n_landmarks_"}
    _rewrite(tmp_path / "old.safetensors",
             lambda pairs: pairs.__setitem__(slice(None), [p for p in pairs if p[0] not in added]))
    loaded = load_model(tmp_path / "old.safetensors")
    assert loaded.get_params()["exact_limit"] == 8000 and loaded.n_jobs is None
    np.testing.assert_allclose(loaded.predict(bags), BagKernelRegressor().fit(bags, y).predict(bags))


@pytest.mark.parametrize("field, value, message", [
    ("n_landmarks_", 59, "n_landmarks_ does not match"),
    ("landmark_rows_", None, "landmark_rows_ missing"),
])
def test_a_file_whose_landmarks_disagree_is_refused(tmp_path, field, value, message):
    bags, _, y = _data(n=120)
    BagKernelRegressor(exact_limit=40).fit(bags, y).save(tmp_path / "m.safetensors")

    def lie(pairs):
        for pair in pairs:
            if pair[0] == field:
                pair[1] = value
    _rewrite(tmp_path / "m.safetensors", lie)
    with pytest.raises(ModelFileError, match=message):
        load_model(tmp_path / "m.safetensors")


def test_landmark_rows_out_of_order_or_range_are_refused():
    from milearn_core.estimators.kernels import _check_regressor_state
    from milearn_core.safe_state import StateError

    bags, _, y = _data(n=120)
    model = BagKernelRegressor(exact_limit=40).fit(bags, y)
    rows = model.landmark_rows_
    for bad in (rows[::-1].copy(), np.r_[rows[:-1], 120]):
        model.landmark_rows_ = bad
        with pytest.raises(StateError, match="landmark_rows_"):
            _check_regressor_state(model)


@pytest.mark.parametrize("params, message", [({"exact_limit": 1}, "exact_limit"),
                                             ({"n_landmarks": 0}, "n_landmarks"),
                                             ({"n_jobs": 0}, "n_jobs"),
                                             ({"progress": "yes"}, "progress")])
def test_bad_landmark_parameters_are_named(params, message):
    bags, _, y = _data()
    with pytest.raises(ValueError, match=message):
        BagKernelRegressor(**params).fit(bags, y)


def test_landmark_budget_grows_with_the_data():
    counts = [landmark_count(n) for n in (10_000, 16_000, 100_000, 200_000)]
    assert counts == sorted(counts) and counts[1] == 3000 and counts[-1] < 8000
