"""Applicability domain: flags for unseen chemistry and out-of-range predictions; safe state."""

import json
import math

import numpy as np
import pytest
from sklearn.base import clone

from milearn_core.persist import ModelFileError
from qsarmil import domain as domain_module
from qsarmil.data import load_dataset
from qsarmil.domain import ApplicabilityDomain

CROWN = "C1COCCOCCOCCOCCOCCO1"  # 18-crown-6
ALKANOLS = ["CCO", "CCCO", "CCCCO", "CC(C)O", "CCCCCO", "CC(C)CO"]


@pytest.fixture(scope="module")
def solubility_domain():
    data = load_dataset("solubility")
    train = data[data.split == "train"]
    return ApplicabilityDomain().fit(train.smiles, train.target), train


def test_unseen_fragments_are_flagged_and_training_molecules_are_not():
    domain = ApplicabilityDomain().fit(ALKANOLS)
    table = domain.score(["c1ccc2ncccc2c1", "CCCO", "CCCCCCO"])
    quinoline, seen, longer = table.itertuples(index=False)
    assert quinoline.unseen_fraction == 1.0 and quinoline.max_similarity < 0.1
    assert not quinoline.in_domain
    assert seen.max_similarity == 1.0 and seen.unseen_fraction == 0.0 and seen.in_domain
    assert longer.in_domain  # hexanol: every environment seen, similar to pentanol


def test_crown_ether_flagged_against_solubility_training_set(solubility_domain):
    domain, train = solubility_domain
    crown, member = domain.score([CROWN, train.smiles.iloc[0]]).itertuples(index=False)
    assert not crown.in_domain and crown.unseen_fraction == 1.0  # 18-membered ring: new
    assert member.in_domain and member.max_similarity == 1.0
    assert domain.target_range_ == pytest.approx((train.target.min(), train.target.max()))
    # 18-crown-6 is predicted at +3.0 logS, above every training target (max 1.58)
    np.testing.assert_array_equal(domain.prediction_in_range([3.0, -2.0, math.nan, None]),
                                  [False, True, False, False])


def test_score_columns_unparseable_rows_and_predictions():
    domain = ApplicabilityDomain().fit(ALKANOLS, [0.1, -0.2, -0.8, 0.0, -1.4, -0.5])
    table = domain.score(["CCO", "not a smiles", ""], predictions=[0.0, 5.0, -9.0])
    assert list(table.columns) == ["max_similarity", "unseen_fraction", "in_domain",
                                   "prediction_in_range"]
    assert table.in_domain.tolist() == [True, False, False]
    assert np.isnan(table.max_similarity[1]) and np.isnan(table.unseen_fraction[2])
    assert table.prediction_in_range.tolist() == [True, False, False]
    assert domain.prediction_in_range([0.5, 0.5], margin=0.5).tolist() == [True, True]
    assert domain.prediction_in_range([0.5]).tolist() == [False]
    with pytest.raises(ValueError, match="2 predictions for 3 molecules"):
        domain.score(["CCO", "CCO", "CCO"], predictions=[1.0, 2.0])
    assert ApplicabilityDomain().fit(ALKANOLS).prediction_in_range([99.0]).tolist() == [True]
    with pytest.raises(ValueError, match="no valid training molecule"):
        ApplicabilityDomain().fit(["nonsense("])


def test_sklearn_conventions():
    domain = ApplicabilityDomain(min_similarity=0.5)
    assert clone(domain).get_params()["min_similarity"] == 0.5
    assert not hasattr(domain, "fingerprints_")
    assert domain.fit(ALKANOLS) is domain


def test_round_trip_through_json(solubility_domain):
    domain, _ = solubility_domain
    text = json.dumps(domain.to_dict())
    loaded = ApplicabilityDomain.from_dict(json.loads(text))
    queries = [CROWN, "CCO", "c1ccccc1C(=O)O", "CN1CCN(C)CC1"]
    assert loaded.score(queries).equals(domain.score(queries))
    assert loaded.get_params() == domain.get_params()
    assert loaded.target_range_ == domain.target_range_


def _mutations():
    def set_path(path, value):
        def mutate(state):
            target = state
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        return mutate

    def delete(key):
        return lambda state: state.pop(key)

    return {
        "extra key": set_path(["code"], "os.system('x')"),
        "missing key": delete("environments"),
        "format": set_path(["format"], "pickle"),
        "version": set_path(["version"], 2),
        "param type": set_path(["params", "radius"], "2"),
        "param bool": set_path(["params", "radius"], True),
        "param range": set_path(["params", "n_bits"], 2**40),
        "param nan": set_path(["params", "min_similarity"], math.nan),
        "extra param": set_path(["params", "callback"], 1),
        "no fingerprints": set_path(["fingerprints"], []),
        "fingerprints type": set_path(["fingerprints"], "0101"),
        "bit out of range": set_path(["fingerprints", 0], [1, 5000]),
        "negative bit": set_path(["fingerprints", 0], [-1, 3]),
        "bits unsorted": set_path(["fingerprints", 0], [9, 3]),
        "bit float": set_path(["fingerprints", 0], [1.0]),
        "env too big": set_path(["environments"], [2**64]),
        "env str": set_path(["environments"], ["12"]),
        "env dict": set_path(["environments"], {"1": 2}),
        "range reversed": set_path(["target_range"], [2.0, 1.0]),
        "range nan": set_path(["target_range"], [math.nan, 1.0]),
        "range length": set_path(["target_range"], [1.0, 2.0, 3.0]),
        "range str": set_path(["target_range"], ["a", "b"]),
        "not a dict": lambda state: state.clear(),
    }


@pytest.mark.parametrize("name", sorted(_mutations()))
def test_malformed_state_is_refused(name):
    state = ApplicabilityDomain().fit(ALKANOLS, [0.0] * 6).to_dict()
    _mutations()[name](state)
    with pytest.raises(ModelFileError, match="applicability domain"):
        ApplicabilityDomain.from_dict(state)


def test_sizes_are_bounded_before_use(monkeypatch):
    state = ApplicabilityDomain().fit(ALKANOLS).to_dict()
    monkeypatch.setattr(domain_module, "MAX_MOLECULES", 3)
    with pytest.raises(ModelFileError, match="fingerprints"):
        ApplicabilityDomain.from_dict(state)
    monkeypatch.setattr(domain_module, "MAX_MOLECULES", 100)
    monkeypatch.setattr(domain_module, "MAX_ENVIRONMENTS", 2)
    with pytest.raises(ModelFileError, match="environments"):
        ApplicabilityDomain.from_dict(state)
    for bad in (None, [], "x", 3):
        with pytest.raises(ModelFileError):
            ApplicabilityDomain.from_dict(bad)
