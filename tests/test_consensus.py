"""Consensus of bag regressors: averaged predictions, exact averaged contributions, safe files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from milearn_core import (
    AdditiveRegressor,
    BagKernelRegressor,
    ConsensusRegressor,
    ModelFileError,
    load_model,
    predicts_from_bag_sums,
)
from qsarmil.model import QSARModel


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    bags = [rng.poisson(1.0, (rng.randint(1, 5), 12)).astype(float) for _ in range(80)]
    y = np.array([np.sqrt(b[:, :4].sum()) + 0.3 * b[:, 5].sum() for b in bags])
    return bags, y


def _members():
    return [("kernel", BagKernelRegressor(kernels=("minmax",))), ("additive", AdditiveRegressor())]


def test_consensus_is_the_weighted_mean_and_its_contributions_add_up(data):
    bags, y = data
    model = ConsensusRegressor(_members(), weights=[3, 1]).fit(bags[:60], y[:60])
    test = bags[60:]
    members = [est.predict(test) for est in model.estimators_]
    np.testing.assert_allclose(model.predict(test), 0.75 * members[0] + 0.25 * members[1])
    contributions = model.instance_contributions(test)
    np.testing.assert_allclose([c.sum() for c in contributions], model.predict(test) - model.intercept_,
                               atol=1e-9)
    np.testing.assert_allclose([w.sum() for w in model.instance_weights(test)], 1.0)


def test_bad_members_and_weights_are_refused(data):
    bags, y = data
    with pytest.raises(ValueError, match="unique name"):
        ConsensusRegressor([("a", AdditiveRegressor()), ("a", AdditiveRegressor())]).fit(bags, y)
    with pytest.raises(ValueError, match="weights"):
        ConsensusRegressor(_members(), weights=[1, -1]).fit(bags, y)
    # Members without names: the same clear refusal, also when a QSARModel asks first whether
    # the consensus sees only bag sums.
    unnamed = ConsensusRegressor([BagKernelRegressor()])
    assert not predicts_from_bag_sums(unnamed)
    with pytest.raises(ValueError, match="unique name"):
        QSARModel(estimator=unnamed).fit(["CCO", "CCN", "CCC", "CCCl"], [1.0, 2.0, 3.0, 4.0])


def test_save_load_round_trip_and_a_swapped_member_is_refused(tmp_path, data):
    bags, y = data
    model = ConsensusRegressor(_members()).fit(bags, y)
    path = tmp_path / "consensus.safetensors"
    model.save(path)
    np.testing.assert_array_equal(load_model(path).predict(bags), model.predict(bags))
    with safe_open(str(path), framework="numpy") as fh:
        config = json.loads(fh.metadata()["milearn_core"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    text = json.dumps(config)
    # The fitted members swapped: each is then not of its declared estimator's class.
    state = dict(config["state"]["state"]["__dict__"])
    fitted = state["estimators_"]
    key = "__list__" if isinstance(fitted, dict) and "__list__" in fitted else None
    items = fitted[key] if key else fitted
    items.reverse()
    evil = tmp_path / "evil.safetensors"
    save_file(tensors, str(evil), metadata={"milearn_core": json.dumps(config)})
    assert json.dumps(config) != text
    with pytest.raises(ModelFileError, match="class"):
        load_model(evil)
