import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import accuracy_score, r2_score

from conftest import FAST
from milearn_core import BagError, MILClassifier, MILRegressor, ModelFileError
from milearn_core.nn import pooling_names

POOLINGS = pooling_names()


@pytest.fixture(scope="module")
def fitted_classifiers(or_bags):
    return {p: MILClassifier(pooling=p, **FAST).fit(or_bags.bags, or_bags.y) for p in POOLINGS}


@pytest.fixture(scope="module")
def fitted_regressors(mean_bags):
    params = dict(FAST, max_epochs=40)
    return {p: MILRegressor(pooling=p, **params).fit(mean_bags.bags, _target(mean_bags, p))
            for p in POOLINGS}


def _target(data, pooling):
    """Additive poolings model a bag *sum*: give them the digit sum, the others the mean."""
    if pooling == "instance_sum":
        return np.array([v.sum() for v in data.instance_values])
    return data.y


def _weights_sum_to_one(weights, bags):
    assert [len(w) for w in weights] == [len(b) for b in bags]
    for w in weights:
        assert np.all(w >= 0)
        assert w.sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_classifier_learns_and_weights(fitted_classifiers, or_bags, pooling):
    model = fitted_classifiers[pooling]
    proba = model.predict_proba(or_bags.bags)
    assert proba.shape == (len(or_bags.bags), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    # Training accuracy well above the 50% base rate after a dozen epochs.
    assert accuracy_score(or_bags.y, model.predict(or_bags.bags)) > 0.7
    _weights_sum_to_one(model.instance_weights(or_bags.bags[:20]), or_bags.bags[:20])


@pytest.mark.parametrize("pooling", POOLINGS)
def test_regressor_learns_and_weights(fitted_regressors, mean_bags, pooling):
    model = fitted_regressors[pooling]
    pred = model.predict(mean_bags.bags)
    assert pred.shape == (len(mean_bags.bags),)
    assert r2_score(_target(mean_bags, pooling), pred) > 0.2
    _weights_sum_to_one(model.instance_weights(mean_bags.bags[:20]), mean_bags.bags[:20])


@pytest.mark.parametrize("pooling", POOLINGS)
def test_batch_composition_does_not_change_a_bag(fitted_classifiers, fitted_regressors, or_bags,
                                                  pooling, rng):
    """Alone, among small bags, or beside a much longer bag: same output, same weights."""
    probe = or_bags.bags[0]
    small = [b[:2] for b in or_bags.bags[1:6]]
    long_bag = np.vstack(or_bags.bags[6:20])
    for model in (fitted_classifiers[pooling], fitted_regressors[pooling]):
        score = model.predict_proba if hasattr(model, "predict_proba") else model.predict
        alone = score([probe])[0]
        crowd = score([*small, probe])[-1]
        beside_long = score([long_bag, probe, long_bag])[1]
        np.testing.assert_allclose(crowd, alone, atol=1e-5)
        np.testing.assert_allclose(beside_long, alone, atol=1e-5)
        w_alone = model.instance_weights([probe], method="native")[0]
        np.testing.assert_allclose(model.instance_weights([long_bag, probe], method="native")[1],
                                   w_alone, atol=1e-5)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_instance_order_does_not_matter(fitted_classifiers, or_bags, pooling, rng):
    model = fitted_classifiers[pooling]
    bag = or_bags.bags[3]
    perm = rng.permutation(len(bag))
    np.testing.assert_allclose(model.predict_proba([bag[perm]]), model.predict_proba([bag]),
                               atol=1e-5)
    w = model.instance_weights([bag], method="native")[0]
    w_perm = model.instance_weights([bag[perm]], method="native")[0]
    np.testing.assert_allclose(w_perm, w[perm], atol=1e-5)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_save_load_round_trip(fitted_classifiers, fitted_regressors, or_bags, pooling, tmp_path):
    for model in (fitted_classifiers[pooling], fitted_regressors[pooling]):
        path = tmp_path / f"{pooling}.safetensors"
        model.save(path)
        loaded = type(model).load(path)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.predict(or_bags.bags), model.predict(or_bags.bags))
        for a, b in zip(loaded.instance_weights(or_bags.bags[:5], method="native"),
                        model.instance_weights(or_bags.bags[:5], method="native")):
            np.testing.assert_allclose(a, b, atol=1e-7)


@pytest.mark.parametrize("pooling", ["attention", "self_attention", "dynamic", "instance_mean"])
def test_same_seed_same_model(mean_bags, pooling):
    params = dict(FAST, pooling=pooling, dropout=0.2, instance_dropout=0.2, max_epochs=4)
    a = MILRegressor(**params).fit(mean_bags.bags, mean_bags.y).predict(mean_bags.bags)
    b = MILRegressor(**params).fit(mean_bags.bags, mean_bags.y).predict(mean_bags.bags)
    c = MILRegressor(**dict(params, random_state=1)).fit(mean_bags.bags, mean_bags.y)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c.predict(mean_bags.bags))


def test_fit_leaves_global_torch_rng_alone(mean_bags):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MILRegressor(**dict(FAST, max_epochs=1)).fit(mean_bags.bags, mean_bags.y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_multiclass_string_labels_and_balanced_weights(or_bags):
    y = np.array(["three" if 3 in d else "zero" if 0 in d else "other"
                  for d in or_bags.instance_values])
    model = MILClassifier(class_weight="balanced", **dict(FAST, max_epochs=40))
    model.fit(or_bags.bags, y)
    assert list(model.classes_) == ["other", "three", "zero"]
    counts = np.array([np.sum(y == c) for c in model.classes_])
    # Balanced weights are inversely proportional to class frequency.
    np.testing.assert_allclose(model._loss_weights.numpy() * counts, len(y) / 3, rtol=1e-5)
    assert model.predict_proba(or_bags.bags).shape == (len(y), 3)
    assert accuracy_score(y, model.predict(or_bags.bags)) > 0.7


def test_single_class_rejected(or_bags):
    with pytest.raises(ValueError, match="single class"):
        MILClassifier(**FAST).fit(or_bags.bags[:5], ["a"] * 5)


def test_multi_output_regression(mean_bags):
    y = np.column_stack([mean_bags.y, -2 * mean_bags.y + 100])
    model = MILRegressor(**dict(FAST, max_epochs=30)).fit(mean_bags.bags, y)
    pred = model.predict(mean_bags.bags)
    assert pred.shape == y.shape
    # Predictions come back in original units (second target lives around 90).
    assert 80 < pred[:, 1].mean() < 100
    assert r2_score(y, pred) > 0.3


def test_regression_extrapolates_beyond_training_range(mean_bags):
    """Targets are standardised, not squashed: shifting y shifts predictions."""
    model = MILRegressor(**FAST).fit(mean_bags.bags, mean_bags.y + 1000)
    assert model.predict(mean_bags.bags).mean() == pytest.approx(mean_bags.y.mean() + 1000, abs=1)


@pytest.mark.parametrize("pooling", ["instance_mean", "instance_sum", "instance_max"])
def test_instance_contributions_add_up_to_prediction(fitted_regressors, mean_bags, pooling):
    model = fitted_regressors[pooling]
    contributions = model.instance_contributions(mean_bags.bags[:15])
    np.testing.assert_allclose([c.sum() for c in contributions],
                               model.predict(mean_bags.bags[:15]), rtol=1e-5, atol=1e-5)


def test_instance_contributions_need_instance_pooling(fitted_regressors, mean_bags):
    with pytest.raises(ValueError, match="instance-level pooling"):
        fitted_regressors["attention"].instance_contributions(mean_bags.bags[:2])


def test_early_stopping_restores_best_epoch(or_bags):
    model = MILClassifier(**dict(FAST, early_stopping=True, max_epochs=40, patience=3,
                                 learning_rate=0.02)).fit(or_bags.bags, or_bags.y)
    history = model.history_
    assert history.n_epochs <= 40
    best = int(np.argmin(history.val_loss))
    assert history.best_epoch == best
    if history.n_epochs < 40:
        assert history.n_epochs == best + 1 + 3


def test_bad_input_errors_name_the_bag(fitted_classifiers, or_bags):
    model = fitted_classifiers["attention"]
    with pytest.raises(BagError, match="bag 1: has 10 features, expected 64"):
        model.predict([or_bags.bags[0], np.ones((2, 10))])
    with pytest.raises(BagError, match="bag 2: empty"):
        MILClassifier(**FAST).fit([*or_bags.bags[:2], np.ones((0, 64))], [0, 1, 0])
    with pytest.raises(BagError, match="y has 3 labels but X has 2 bags"):
        MILClassifier(**FAST).fit(or_bags.bags[:2], [0, 1, 0])
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        MILClassifier(pooling="median", **FAST).fit(or_bags.bags, or_bags.y)


def test_corrupt_or_foreign_model_file(tmp_path, fitted_regressors):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a model at all")
    with pytest.raises(ModelFileError, match="not a milearn_core model"):
        MILRegressor.load(garbage)
    path = tmp_path / "model.safetensors"
    fitted_regressors["mean"].save(path)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelFileError):
        MILRegressor.load(truncated)
    with pytest.raises(ModelFileError, match="holds a MILRegressor, not a MILClassifier"):
        MILClassifier.load(path)
    with pytest.raises(ModelFileError, match="no such model file"):
        MILRegressor.load(tmp_path / "missing.safetensors")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(or_bags):
    cpu = MILClassifier(**FAST).fit(or_bags.bags, or_bags.y)
    gpu = MILClassifier(**dict(FAST, device="cuda")).fit(or_bags.bags, or_bags.y)
    np.testing.assert_allclose(gpu.predict_proba(or_bags.bags), cpu.predict_proba(or_bags.bags),
                               atol=1e-3)


def test_sparse_bags_train_and_predict_like_dense(mean_bags):
    sparse = [sp.csr_matrix(b) for b in mean_bags.bags]
    for pooling in ("attention", "instance_sum"):
        a = MILRegressor(pooling=pooling, **FAST).fit(sparse, mean_bags.y)
        b = MILRegressor(pooling=pooling, **FAST).fit(mean_bags.bags, mean_bags.y)
        np.testing.assert_allclose(a.predict(sparse[:20]), b.predict(mean_bags.bags[:20]), rtol=1e-4,
                                   atol=1e-4)
        for wa, wb in zip(a.instance_weights(sparse[:5], method="loo"),
                          b.instance_weights(mean_bags.bags[:5], method="loo")):
            np.testing.assert_allclose(wa, wb, atol=1e-4)
