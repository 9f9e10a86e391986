"""Non-additive targets with known key atoms, and the atom-level KID that scores them."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors

from qsarmil.data import fragment_contributions, list_datasets, load_chembl_sample, load_dataset
from qsarmil.fragments import brics_fragments
from qsarmil.model import QSARModel
from qsarmil.nonadditive import TPSA_THRESHOLD, key_atom_hits, make_nonadditive_task

ACID_AND_HALIDE = "OC(=O)c1ccc(Cl)cc1"
ACID_ONLY, HALIDE_ONLY, NEITHER = "OC(=O)c1ccccc1", "Clc1ccccc1", "c1ccccc1CCO"


def test_interaction_needs_both_groups_and_names_their_atoms():
    task = make_nonadditive_task("interaction", [ACID_AND_HALIDE, ACID_ONLY, HALIDE_ONLY, NEITHER,
                                                 "not a smiles"], max_molecules=10)
    labels = dict(zip(task.smiles, task.y))
    # One negative per positive, and (half of them, rounded up) holding one group alone.
    assert len(labels) == 2 and labels[ACID_AND_HALIDE] == 1
    assert set(labels) - {ACID_AND_HALIDE} <= {ACID_ONLY, HALIDE_ONLY}
    groups = task.key_groups[task.smiles.index(ACID_AND_HALIDE)]
    assert groups == [(0, 1, 2), (6, 7)]  # the acid's C, =O and OH; the ring carbon and its Cl
    assert task.task == "classification"


def test_max_fragment_and_threshold_follow_their_fragments():
    smiles = load_chembl_sample(300)
    task = make_nonadditive_task("max_fragment", smiles, max_molecules=50)
    assert task.task == "regression" and len(task.smiles) == 50
    for smi, y, (group,) in zip(task.smiles, task.y, task.key_groups):
        mol = Chem.MolFromSmiles(smi)
        values = fragment_contributions(mol)
        assert y == pytest.approx(values.max()) and len(values) >= 2
        best = brics_fragments(mol)[int(np.argmax(values))]
        assert set(best.atoms) <= set(group)
        # not additive: the label is not the molecule's logP
    assert not np.allclose(task.y, [Descriptors.MolLogP(Chem.MolFromSmiles(s)) for s in task.smiles])
    polar = make_nonadditive_task("threshold", smiles, max_molecules=40)
    assert 0 < polar.y.sum() <= 20 and polar.y.sum() == len(polar.y) - polar.y.sum()
    for smi, y, groups in zip(polar.smiles, polar.y, polar.key_groups):
        mol = Chem.MolFromSmiles(smi)
        assert bool(y) == bool(groups)
        if Descriptors.TPSA(mol) < TPSA_THRESHOLD:  # no fragment can reach what the whole lacks
            assert y == 0
        for group in groups:  # key atoms are whole fragments
            fragments = [set(f.atoms) for f in brics_fragments(mol)]
            assert all(f <= set(group) or not f & set(group) for f in fragments)


def test_key_atom_hits():
    values = [np.array([0.1, 0.9, 0.2, 0.8]), np.array([0.1, 0.9, 0.95, 0.8]), None,
              np.array([0.5, 0.1])]
    groups = [[(1,), (3,)], [(1,), (3,)], [(0,)], []]
    # 1: both groups outrank atoms 0 and 2; 2: atom 2 outranks group (3,); None and no key: misses.
    assert list(key_atom_hits(values, groups)) == [True, False, False, False]
    assert list(key_atom_hits([np.array([0.3, 0.2])], [[(0, 1)]])) == [True]  # nothing outside
    with pytest.raises(ValueError, match="2 attributions but 1"):
        key_atom_hits(values[:2], groups[:1])
    with pytest.raises(ValueError, match="task must be one of"):
        make_nonadditive_task("sum", [NEITHER])


def test_the_default_model_finds_the_interacting_groups():
    pool = load_chembl_sample() + [s for name in list_datasets() if name.startswith("CHEMBL")
                                   for s in load_dataset(name).smiles]
    task = make_nonadditive_task("interaction", pool[:12000], max_molecules=400)  # 200 positives
    every_fourth = np.arange(len(task.smiles)) % 4 == 0
    train, test = task.subset(np.flatnonzero(~every_fourth)), task.subset(np.flatnonzero(every_fourth))
    model = QSARModel(uncertainty=None).fit(train.smiles, train.y)
    assert np.mean(model.predict(test.smiles) == test.y) > 0.8
    positives = [i for i, g in enumerate(test.key_groups) if g]
    explanations = model.explain([test.smiles[i] for i in positives], reference="intercept")
    hits = key_atom_hits([e.atom_contributions for e in explanations],
                         [test.key_groups[i] for i in positives])
    assert len(positives) >= 10 and hits.mean() > 0.7
