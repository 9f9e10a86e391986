import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.svm import SVR

from milearn_core import (
    MISVM,
    AdditiveRegressor,
    BagStandardScaler,
    BagWrapper,
    InstanceWrapper,
    MILClassifier,
    MILRegressor,
    StepwiseSearchCV,
    default_search_space,
    load_model,
)
from milearn_core.datasets import make_digit_bags
from milearn_core.estimators import BagKernelRegressor
from milearn_core.search import candidate_seed

TINY = dict(hidden_layer_sizes=(8,), max_epochs=6, batch_size=16, early_stopping=False)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread is faster


@pytest.fixture(scope="module")
def small_mean():
    return make_digit_bags("mean", n_bags=60, bag_size=(3, 6), random_state=4)


@pytest.fixture(scope="module")
def small_or():
    return make_digit_bags("or", n_bags=60, bag_size=(3, 6), random_state=5)


def _linear_bags(n=80, seed=0):
    """Bags whose label is the sum of their instances' first feature (plus noise)."""
    rng = np.random.RandomState(seed)
    bags = [rng.rand(rng.randint(2, 6), 4) for _ in range(n)]
    y = np.array([b[:, 0].sum() for b in bags]) + 0.05 * rng.randn(n)
    return bags, y


def _network_search(n_jobs):
    steps = [("pooling", ["instance_mean", "attention"]), ("learning_rate", [1e-3, 1e-2]),
             ("pooling", ["instance_mean", "attention"])]
    return StepwiseSearchCV(MILRegressor(**TINY), steps, cv=3, n_jobs=n_jobs, random_state=7,
                            progress=False)


def test_same_seed_same_result_with_one_and_two_jobs(small_mean):
    X, y = small_mean.bags, small_mean.y
    first = _network_search(1).fit(X, y)
    again = _network_search(1).fit(X, y)
    parallel = _network_search(2).fit(X, y)
    for other in (again, parallel):
        assert other.best_params_ == first.best_params_
        np.testing.assert_array_equal(other.predict(X), first.predict(X))
        np.testing.assert_allclose(other.cv_results_["mean_test_score"],
                                   first.cv_results_["mean_test_score"], rtol=1e-5)
        assert list(other.cv_results_["seed"]) == list(first.cv_results_["seed"])
    # Each candidate's seed is a function of the search seed and its parameters only.
    for params, seed in zip(first.cv_results_["params"], first.cv_results_["seed"]):
        assert seed == candidate_seed(7, params)
    assert first.best_estimator_.random_state == candidate_seed(7, first.best_params_)
    # Another search seed gives other candidate seeds.
    other_seed = clone(_network_search(1)).set_params(random_state=8).fit(X, y)
    assert list(other_seed.cv_results_["seed"]) != list(first.cv_results_["seed"])


def test_each_step_keeps_its_best_value_and_repeats_are_not_refit():
    bags, y = _linear_bags()
    steps = [("estimator__alpha", [100.0, 0.01, 1.0]), ("pool", ["max", "mean"]),
             ("estimator__alpha", [100.0, 0.01, 1.0])]
    search = StepwiseSearchCV(BagWrapper(Ridge(), pool="mean"), steps, cv=4, progress=False).fit(bags, y)
    res = search.cv_results_
    for k, (name, values) in enumerate(steps):
        kept = search.path_[k]["value"]
        rows = [i for i, p in enumerate(res["params"])
                if all(p[n] == search.path_[k - 1]["value"] for n in [steps[k - 1][0]] if k > 0)
                and p[name] in values]
        scores = {res["params"][i][name]: res["mean_test_score"][i] for i in rows}
        assert scores[kept] == max(scores[v] for v in values if v in scores)
    # The sum of features is linear in the mean only for equal sizes: mean pooling loses
    # the bag size, max pooling loses more; a small penalty fits best.
    assert search.best_params_["estimator__alpha"] in (0.01, 1.0)
    n_candidates = len(res["params"])
    assert n_candidates == len({repr(sorted(p.items())) for p in res["params"]})  # no repeats
    assert n_candidates < sum(len(v) for _, v in steps)
    assert search.n_fits_ == n_candidates * 4 and search.n_splits_ == 4
    assert search.best_score_ == res["mean_test_score"][search.best_index_]
    assert res["rank_test_score"][search.best_index_] == 1
    for key in ("mean_fit_time", "std_test_score", "split3_test_score", "param_pool", "step_param"):
        assert len(res[key]) == n_candidates


def test_scikit_learn_conventions(small_or):
    search = StepwiseSearchCV(MILClassifier(**TINY), [("pooling", ["mean", "attention"])],
                              cv=2, progress=False)
    copy = clone(search)
    assert copy.get_params(deep=False).keys() == search.get_params(deep=False).keys()
    assert copy.get_params()["estimator__pooling"] == "auto"
    copy.set_params(estimator__learning_rate=0.01, cv=3)
    assert copy.estimator.learning_rate == 0.01 and search.estimator.learning_rate == 3e-3
    assert set(vars(search)) == set(search.get_params(deep=False))  # __init__ stores params only
    assert is_classifier(search) and not is_classifier(StepwiseSearchCV(MILRegressor()))
    # Nested cross-validation: the search is an ordinary classifier.
    scores = cross_val_score(search, small_or.bags, small_or.y, cv=2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    assert not hasattr(search, "best_estimator_")  # cross_val_score fits clones


@pytest.mark.parametrize("settings, message", [
    (dict(steps=[("no_such_param", [1, 2])]), "no parameter 'no_such_param'"),
    (dict(steps=[("alpha", [])]), "non-empty list"),
    (dict(steps=[("alpha", "abc")]), "non-empty list"),
    (dict(steps=[]), "non-empty list"),
    (dict(cv=3, validation_fraction=0.2), "not both"),
    (dict(validation_fraction=1.5), r"validation_fraction must lie in \(0, 1\)"),
    (dict(cv=1), "at least 2 folds"),
    (dict(random_state=np.random.RandomState(0)), "random_state must be an int"),
    (dict(refit="yes"), "refit must be True or False"),
    (dict(progress="sometimes"), "progress must be"),
])
def test_bad_settings_fail_at_fit_with_a_clear_message(settings, message):
    bags, y = _linear_bags(20)
    params = {"steps": [("alpha", [1.0, 10.0])], **settings}
    search = StepwiseSearchCV(Ridge(), **params)  # construction never raises
    X = np.array([b.mean(axis=0) for b in bags])  # any X indexable by row works
    with pytest.raises(ValueError, match=message):
        search.fit(X, y)


def test_validation_fraction_and_stratified_folds(small_or):
    seen = []

    def recording_scorer(estimator, X, y):
        seen.append(np.asarray(y))
        return float(np.mean(estimator.predict(X) == y))

    clf = BagWrapper(LogisticRegression(max_iter=200), pool="max")
    search = StepwiseSearchCV(clf, [("estimator__C", [0.1, 1.0])], cv=3, scoring=recording_scorer,
                              progress=False).fit(small_or.bags, small_or.y)
    share = small_or.y.mean()
    assert len(seen) == 6 and all(abs(fold.mean() - share) < 0.1 for fold in seen)  # stratified
    holdout = StepwiseSearchCV(clf, [("estimator__C", [0.1, 1.0])], validation_fraction=0.25,
                               scoring="balanced_accuracy", progress=False).fit(small_or.bags, small_or.y)
    assert holdout.n_splits_ == 1 and holdout.n_fits_ == 2
    assert "split0_test_score" in holdout.cv_results_ and "split1_test_score" not in holdout.cv_results_
    assert 0 <= holdout.score(small_or.bags, small_or.y) <= 1
    assert search.predict_proba(small_or.bags[:5]).shape == (5, 2)
    np.testing.assert_array_equal(search.classes_, [0, 1])


def test_groups_reach_the_splitter():
    bags, y = _linear_bags(40)
    groups = np.repeat(np.arange(8), 5)
    seen = []

    def scorer(estimator, X, y_true):
        seen.append(len(y_true))
        return -float(np.mean((estimator.predict(X) - y_true) ** 2))

    StepwiseSearchCV(BagWrapper(Ridge()), [("estimator__alpha", [1.0])], cv=GroupKFold(4),
                     scoring=scorer, progress=False).fit(bags, y, groups=groups)
    assert seen == [10, 10, 10, 10]


def test_instance_methods_are_delegated_where_the_best_estimator_has_them():
    bags, y = _linear_bags()
    additive = StepwiseSearchCV(AdditiveRegressor(), cv=3, progress=False).fit(bags, y)
    contributions = additive.instance_contributions(bags[:3])
    np.testing.assert_allclose([c.sum() for c in contributions],
                               additive.predict(bags[:3]) - additive.best_estimator_.intercept_)
    weights = additive.instance_weights(bags[:3])
    assert all(np.isclose(w.sum(), 1) for w in weights)
    wrapped = StepwiseSearchCV(BagWrapper(SVR()), [("estimator__C", [1.0])], cv=3, progress=False)
    assert not hasattr(wrapped, "instance_contributions") and not hasattr(additive, "predict_proba")
    assert hasattr(wrapped, "instance_weights")
    unfitted = StepwiseSearchCV(AdditiveRegressor())
    with pytest.raises(AttributeError, match="no refit estimator"):
        unfitted.predict(bags)
    no_refit = StepwiseSearchCV(AdditiveRegressor(), [("fit_intercept", [True, False])], cv=3,
                                refit=False, progress=False).fit(bags, y)
    assert no_refit.best_params_ and not hasattr(no_refit, "best_estimator_")
    additive.set_params(refit=False).fit(bags, y)  # no stale estimator from the earlier fit
    assert not hasattr(additive, "best_estimator_") and not hasattr(additive, "predict_proba")


def test_best_estimator_is_a_plain_saveable_estimator(tmp_path, small_mean):
    search = StepwiseSearchCV(MILRegressor(**TINY), [("learning_rate", [1e-3, 1e-2])],
                              validation_fraction=0.3, progress=False).fit(small_mean.bags, small_mean.y)
    assert type(search.best_estimator_) is MILRegressor
    search.best_estimator_.save(tmp_path / "best.safetensors")
    loaded = load_model(tmp_path / "best.safetensors")
    np.testing.assert_allclose(loaded.predict(small_mean.bags), search.predict(small_mean.bags), rtol=1e-6)


def test_failing_candidates_score_nan_and_never_win():
    bags, y = _linear_bags(30)
    search = StepwiseSearchCV(BagWrapper(Ridge()), [("pool", ["no_such_pool", "mean"])], cv=3,
                              progress=False)
    with pytest.warns(UserWarning, match="fits failed"):
        search.fit(bags, y)
    assert search.best_params_ == {"pool": "mean"}
    assert np.isnan(search.cv_results_["mean_test_score"][0])
    broken = StepwiseSearchCV(BagWrapper(Ridge()), [("pool", ["no_such_pool"])], cv=3, progress=False)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="every candidate failed"):
        broken.fit(bags, y)
    strict = StepwiseSearchCV(BagWrapper(Ridge()), [("pool", ["no_such_pool"])], cv=3,
                              error_score="raise", progress=False)
    with pytest.raises(ValueError, match="unknown pool"):
        strict.fit(bags, y)


def test_default_search_spaces():
    net = default_search_space(MILRegressor(pooling="attention", learning_rate=0.05))
    names = [name for name, _ in net]
    assert names[0] == "pooling" and {"hidden_layer_sizes", "learning_rate", "weight_decay", "dropout",
                                      "instance_dropout", "batch_size", "activation"} <= set(names)
    values = dict(net)
    assert values["pooling"][0] == "attention" and values["learning_rate"][0] == 0.05  # current first
    assert "instance_max" in dict(default_search_space(MILClassifier()))["pooling"]
    assert [n for n, _ in default_search_space(AdditiveRegressor())] == ["alphas", "fit_intercept"]
    kernel = dict(default_search_space(BagKernelRegressor(kernels=("linear",))))
    assert kernel["kernels"][0] == ("linear",) and ("minmax",) in kernel["kernels"] and "alphas" in kernel
    wrapper = dict(default_search_space(BagWrapper(SVR(C=3.0), pool="max")))
    assert wrapper["pool"][0] == "max" and wrapper["estimator__C"][0] == 3.0 and "estimator__gamma" in wrapper
    assert "aggregate" in dict(default_search_space(InstanceWrapper(LogisticRegression())))
    assert "variant" in dict(default_search_space(MISVM()))
    pipe = Pipeline([("scale", BagStandardScaler()), ("mil", MILRegressor())])
    assert default_search_space(pipe)[0][0] == "mil__pooling"
    with pytest.raises(ValueError, match="no default search space for Ridge"):
        default_search_space(Ridge())
    # steps=None uses the default space; every name is a real parameter.
    search = StepwiseSearchCV(pipe)
    assert search._checked_steps() == default_search_space(pipe)
