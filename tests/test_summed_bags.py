"""Summed bags: a molecule described whole stands in for its fragment bag where only sums count."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from milearn_core import (
    AdditiveRegressor,
    BagKernelRegressor,
    ConsensusRegressor,
    MILRegressor,
    predicts_from_bag_sums,
)
from qsarmil.data import load_dataset
from qsarmil.descriptors import ATOM_PAIR_WEIGHT, describe_fragments_sparse
from qsarmil.featurize import MoleculeBagger
from qsarmil.fragments import fragment_molecule
from qsarmil.model import REGRESSION_FRAGMENT_DESCRIPTORS, QSARModel

ODD = ["C", "CC(=O)[O-].[Na+]", "C[N+](C)(C)CCOC(=O)c1ccccc1", "C1CCCCCCCCCCCC(=O)OCCCCCCCCC1",
       "C[C@H](N)C(=O)N[C@@H](Cc1ccccc1)C(=O)O", "c1ccccc1.Cl", "not a smiles", "N.N.Cl[Pt]Cl",
       "OCCOCCOCCOCCOCCOCCOCCOCCOCCOCCOCCOCCOCCO", "CC(=O)OC", "CC(=O)NC"]
KINDS = ("morgan_parent", "atompair_parent")  # needs the cuts to sum (see the last test)


@pytest.fixture(scope="module")
def molecules() -> list[str]:
    data = load_dataset("solubility")
    return ODD + data.smiles.iloc[:150].tolist()


@pytest.mark.parametrize("method", ["brics", "recap"])
@pytest.mark.parametrize("smiles", ODD[2:6] + ODD[8:])
def test_in_parent_atom_pairs_add_up_to_the_molecule(smiles, method):
    mol = Chem.MolFromSmiles(smiles)
    fragments = fragment_molecule(mol, method)
    bag, _ = describe_fragments_sparse(fragments, mol, ["atompair_parent"], 2, 4096)
    whole = rdFingerprintGenerator.GetAtomPairGenerator(fpSize=4096).GetCountFingerprintAsNumPy(mol)
    np.testing.assert_allclose(np.asarray(bag.sum(axis=0)).ravel(), ATOM_PAIR_WEIGHT * whole,
                               rtol=1e-6)


@pytest.mark.parametrize("kinds", [KINDS, REGRESSION_FRAGMENT_DESCRIPTORS])
@pytest.mark.parametrize("bag_type", ["brics", "recap"])
def test_summed_bags_equal_the_sums_of_the_fragment_bags(molecules, bag_type, kinds):
    bagger = MoleculeBagger(bag_type, descriptors=kinds, progress=False)
    bags = bagger.transform(molecules)
    cut = (bagger.valid_index_.copy(), [(f.index, f.reason) for f in bagger.failures_],
           [p.stripped for p in bagger.provenance_])
    summed = bagger.transform_summed(molecules)
    assert (bagger.valid_index_.tolist(), [(f.index, f.reason) for f in bagger.failures_],
            [p.stripped for p in bagger.provenance_]) == (cut[0].tolist(), cut[1], cut[2])
    assert [f.index for f in bagger.failures_] == [ODD.index("not a smiles")]
    assert max(b.shape[0] for b in bags) > 1 and all(s.shape[0] == 1 for s in summed)
    for bag, one, prov in zip(bags, summed, bagger.provenance_):
        np.testing.assert_allclose(one.toarray()[0], np.asarray(bag.sum(axis=0)).ravel(),
                                   rtol=1e-6, atol=1e-6)
        assert prov.atoms == [tuple(range(prov.mol.GetNumAtoms()))]


@pytest.mark.parametrize("params", [{"include_whole": True}, {"descriptors": "morgan"},
                                    {"descriptors": ("morgan_parent", "rdkit2d")},
                                    {"bag_type": "conformers"}])
def test_bags_that_need_their_fragments_are_not_summed(params):
    bagger = MoleculeBagger(**params)
    assert not bagger.summable()
    with pytest.raises(ValueError, match="cannot be summed without their fragments"):
        bagger.transform_summed(["CCO"])


def test_which_estimators_see_only_bag_sums():
    assert predicts_from_bag_sums(BagKernelRegressor())
    assert predicts_from_bag_sums(AdditiveRegressor())
    assert not predicts_from_bag_sums(MILRegressor())
    assert predicts_from_bag_sums(ConsensusRegressor([("k", BagKernelRegressor()),
                                                      ("a", AdditiveRegressor())]))
    assert not predicts_from_bag_sums(ConsensusRegressor([("k", BagKernelRegressor()),
                                                          ("n", MILRegressor())]))


def test_the_default_model_fits_on_sums_as_it_would_on_fragment_bags(molecules):
    data = load_dataset("solubility")
    train, test = data.iloc[:200], data.iloc[200:260]
    model = QSARModel(bagger=MoleculeBagger(progress=False)).fit(train.smiles, train.target)
    assert all(len(p.atoms) == 1 for p in model.bagger_.provenance_)  # fitted on whole molecules

    # The same estimator on the fragment bags themselves.
    bagger = MoleculeBagger(descriptors=REGRESSION_FRAGMENT_DESCRIPTORS, progress=False)
    direct = BagKernelRegressor().fit(bagger.transform(train.smiles), train.target)
    assert (direct.kernel_, direct.alpha_) == (model.estimator_.kernel_, model.estimator_.alpha_)
    fragment_bags = bagger.transform(test.smiles)
    predicted = model.predict(test.smiles)
    np.testing.assert_allclose(predicted, direct.predict(fragment_bags), rtol=1e-6, atol=1e-6)

    # Explanations still cut the molecules, and their contributions add up to the prediction.
    table, instances = model.predict_with_weights(test.smiles)
    np.testing.assert_allclose(table.prediction.to_numpy(dtype=float), predicted, atol=1e-6)
    assert max(len(frame) for frame in instances) > 1
    sums = [frame.contribution.sum() + model.estimator_.intercept_ for frame in instances]
    np.testing.assert_allclose(sums, predicted, atol=1e-6)


def test_scaled_models_still_see_every_fragment():
    smiles = ["CCOc1ccccc1C(=O)N", "CCN(CC)C(=O)c1ccccc1", "OCC(O)CO", "c1ccccc1CCN"] * 3
    y = np.arange(len(smiles), dtype=float)
    scaled = QSARModel(bagger=MoleculeBagger(descriptors=KINDS, progress=False),
                       estimator=AdditiveRegressor(cv=3), scale_features=True).fit(smiles, y)
    assert max(len(p.atoms) for p in scaled.bagger_.provenance_) > 1


@pytest.mark.parametrize("smiles", ["CC(=O)OC", "CC(=O)NC"])
def test_sums_follow_the_cuts_not_the_whole_molecule(smiles):
    # RDKit drops a Morgan environment covering the same bonds as another; the fragments of
    # methyl acetate keep both, so their sum is not the molecule's own fingerprint.
    bagger = MoleculeBagger(descriptors="morgan_parent", morgan_size=4096, progress=False)
    fragment_sum = np.asarray(bagger.transform([smiles])[0].sum(axis=0)).ravel()
    summed = bagger.transform_summed([smiles])[0].toarray().ravel()
    whole = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=4096).GetCountFingerprintAsNumPy(
        Chem.MolFromSmiles(smiles))
    np.testing.assert_array_equal(summed, fragment_sum)
    assert summed.sum() == whole.sum() + 1


@pytest.mark.parametrize("smiles", ["CC(=O)OC", "CC(=O)NC", ODD[4]])
def test_every_atom_environment_adds_up_to_the_whole_molecule(smiles):
    # "morgan_atoms" keeps the environments RDKit would drop as duplicates, so the fragments of
    # any molecule add up to its own fingerprint and no cut is needed to sum them.
    mol = Chem.MolFromSmiles(smiles)
    bag, _ = describe_fragments_sparse(fragment_molecule(mol, "recap"), mol, ["morgan_atoms"], 2, 4096)
    whole = rdFingerprintGenerator.GetMorganGenerator(
        radius=2, fpSize=4096, includeRedundantEnvironments=True).GetCountFingerprintAsNumPy(mol)
    np.testing.assert_array_equal(np.asarray(bag.sum(axis=0)).ravel(), whole)


def test_summed_bags_keep_the_time_limit_and_refuse_odd_molecules_as_cut_bags_do():
    slow = MoleculeBagger(descriptors=KINDS, time_limit=1e-9, progress=False)
    assert slow.transform_summed([ODD[4]]) == []
    assert "time limit" in slow.failures_[0].reason
    # A Mol built without sanitising: RDKit's own reason, the same on both paths.
    bad = Chem.MolFromSmiles("C[F]CC(=O)O", sanitize=False)
    bagger = MoleculeBagger(descriptors=KINDS, progress=False)
    reasons = []
    for transform in (bagger.transform, bagger.transform_summed):
        assert transform([bad]) == []
        reasons.append(bagger.failures_[0].reason)
    assert reasons[0] == reasons[1] and "Explicit valence" in reasons[0]
