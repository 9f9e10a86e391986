"""Conformer bags are embedded once per molecule inside ``conformer_cache()`` (CV folds)."""

import numpy as np

from qsarmil import featurize
from qsarmil.featurize import MoleculeBagger, conformer_cache

SMILES = ["CCO", "c1ccccc1O", "not a molecule", "CC(=O)N"]


def _counting(monkeypatch):
    calls = []
    real = featurize._bag_one

    def counted(item, index, config):
        calls.append(item)
        return real(item, index, config)
    monkeypatch.setattr(featurize, "_bag_one", counted)
    return calls


def test_cache_embeds_each_molecule_once_and_renumbers_rows(monkeypatch):
    calls = _counting(monkeypatch)
    bagger = MoleculeBagger(bag_type="conformers", n_conformers=2, n_jobs=1, progress=False)
    with conformer_cache():
        first = bagger.transform(SMILES)
        first_rows = bagger.valid_index_.copy()
        again = bagger.transform(SMILES[::-1])  # same molecules, other rows
        again_rows, failures = bagger.valid_index_.copy(), bagger.failures_
        again[-1][:] = 0  # a caller changing its bag leaves the cache alone
        third = bagger.transform(SMILES[:1])
    assert sorted(calls) == sorted(SMILES)  # each embedded once
    assert list(first_rows) == [0, 1, 3] and list(again_rows) == [0, 2, 3]
    assert [f.index for f in failures] == [1] and failures[0].input == "not a molecule"
    for a, b in zip(first[1:], again[::-1][1:]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(third[0], first[0])
    assert np.abs(first[0]).sum() > 0
    calls.clear()
    bagger.transform(SMILES[:1])  # outside the block: no cache
    bagger.transform(SMILES[:1])
    assert calls == ["CCO", "CCO"]


def test_fragment_bags_and_settings_are_not_mixed_up(monkeypatch):
    calls = _counting(monkeypatch)
    with conformer_cache():
        MoleculeBagger(progress=False, n_jobs=1).transform(SMILES[:2])
        MoleculeBagger(progress=False, n_jobs=1).transform(SMILES[:2])
        assert len(calls) == 4  # fragments: not cached
        calls.clear()
        two = MoleculeBagger(bag_type="conformers", n_conformers=2, n_jobs=1, progress=False)
        three = MoleculeBagger(bag_type="conformers", n_conformers=3, n_jobs=1, progress=False)
        two.transform(SMILES[:1])
        three.transform(SMILES[:1])
        two.transform(SMILES[:1])
        assert calls == ["CCO", "CCO"]  # other settings: bagged again
