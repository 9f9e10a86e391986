import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neighbors import KNeighborsRegressor

from milearn_core import MISVM, BagWrapper, InstanceWrapper, ModelFileError, kid_accuracy
from milearn_core.estimators.classical import BAG_POOLS, embed_bags


def test_embeddings(rng):
    bags = [rng.rand(n, 3) for n in (2, 5)]
    for pool in BAG_POOLS:
        emb = embed_bags(bags, pool)
        width = 6 if pool in ("mean_std", "extreme") else 3
        assert emb.shape == (2, width)
    np.testing.assert_allclose(embed_bags(bags, "extreme")[1], np.r_[bags[1].min(0), bags[1].max(0)])
    with pytest.raises(ValueError, match="unknown pool"):
        embed_bags(bags, "median")


class Sneaky(LogisticRegression):
    """A class outside the allow-list: saving it must be refused."""


@pytest.mark.parametrize("pool", sorted(BAG_POOLS))
def test_bag_wrapper_feeds_embeddings_to_the_estimator(or_bags, pool):
    model = BagWrapper(RandomForestClassifier(n_estimators=20, random_state=0), pool=pool)
    model.fit(or_bags.bags[:120], or_bags.y[:120])
    assert list(model.classes_) == [0, 1]
    test = or_bags.bags[120:]
    np.testing.assert_array_equal(model.predict_proba(test),
                                  model.estimator_.predict_proba(embed_bags(test, pool)))


def test_bag_wrapper_generalises(or_bags):
    model = BagWrapper(RandomForestClassifier(n_estimators=100, random_state=0), pool="extreme")
    model.fit(or_bags.bags[:120], or_bags.y[:120])
    assert accuracy_score(or_bags.y[120:], model.predict(or_bags.bags[120:])) > 0.6


def test_bag_wrapper_regression_and_loo_weights(mean_bags):
    model = BagWrapper(Ridge(alpha=1.0), pool="mean").fit(mean_bags.bags, mean_bags.y)
    assert r2_score(mean_bags.y, model.predict(mean_bags.bags)) > 0.5
    weights = model.instance_weights(mean_bags.bags[:10])
    assert all(w.sum() == pytest.approx(1) for w in weights)
    assert model.score(mean_bags.bags, mean_bags.y) == pytest.approx(
        r2_score(mean_bags.y, model.predict(mean_bags.bags)))


def test_instance_wrapper_max_finds_the_threes(or_bags):
    model = InstanceWrapper(LogisticRegression(max_iter=500), aggregate="max")
    model.fit(or_bags.bags, or_bags.y)
    assert accuracy_score(or_bags.y, model.predict(or_bags.bags)) > 0.8
    positive = np.flatnonzero(or_bags.y == 1)
    weights = model.instance_weights(or_bags.bags)
    assert kid_accuracy(weights, or_bags.key_instances, bags=positive) > 0.8
    np.testing.assert_allclose(model.predict_proba(or_bags.bags).sum(axis=1), 1)


def test_instance_wrapper_regression(mean_bags):
    model = InstanceWrapper(KNeighborsRegressor(10), aggregate="mean")
    model.fit(mean_bags.bags, mean_bags.y)
    assert model.predict(mean_bags.bags).shape == (len(mean_bags.y),)
    # Instances inherit a noisy label (the bag mean): the fit is real but weak.
    assert r2_score(mean_bags.y, model.predict(mean_bags.bags)) > 0.3
    with pytest.raises(ValueError, match="aggregate must be one of"):
        InstanceWrapper(Ridge(), aggregate="median").fit(mean_bags.bags, mean_bags.y)


@pytest.mark.parametrize("variant", ["mi", "MI"])
def test_misvm(or_bags, variant):
    y = np.where(or_bags.y == 1, "has3", "no3")
    model = MISVM(variant=variant, positive_class="has3").fit(or_bags.bags[:120], y[:120])
    assert list(model.classes_) == ["no3", "has3"]
    assert model.n_iter_ >= 1
    assert accuracy_score(y[120:], model.predict(or_bags.bags[120:])) > 0.85
    weights = model.instance_weights(or_bags.bags)
    assert all(w.sum() == pytest.approx(1) for w in weights)
    positive = np.flatnonzero(or_bags.y == 1)
    assert kid_accuracy(weights, or_bags.key_instances, bags=positive) > 0.8


def test_misvm_rejects_multiclass(or_bags):
    with pytest.raises(ValueError, match="binary"):
        MISVM().fit(or_bags.bags[:3], [0, 1, 2])


@pytest.mark.parametrize(
    "model",
    [BagWrapper(LogisticRegression(), pool="mean_std"),
     InstanceWrapper(LogisticRegression(), aggregate="max"), MISVM()],
)
def test_classical_save_load(or_bags, model, tmp_path):
    model.fit(or_bags.bags, or_bags.y)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = type(model).load(path)
    np.testing.assert_array_equal(loaded.predict(or_bags.bags), model.predict(or_bags.bags))


def test_classical_save_refuses_classes_outside_the_allow_list(tmp_path, or_bags):
    model = BagWrapper(Sneaky()).fit(or_bags.bags, or_bags.y)
    with pytest.raises(TypeError, match="model files hold only these classes"):
        model.save(tmp_path / "foreign.safetensors")
    assert not list(tmp_path.iterdir())  # no half-written file left behind
    corrupt = tmp_path / "corrupt.skops"
    corrupt.write_bytes(b"PK\x03\x04 broken zip")
    with pytest.raises(ModelFileError, match="never loaded"):
        BagWrapper.load(corrupt)
