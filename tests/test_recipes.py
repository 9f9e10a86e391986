"""The physchem recipe: atom-additive descriptors that add up, and exact contributions."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen, rdMolDescriptors

from milearn_core import BagKernelRegressor
from qsarmil.data import load_dataset
from qsarmil.descriptors import PHYSCHEM_COLUMNS, physchem_per_atom
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel
from qsarmil.recipes import PHYSCHEM_DESCRIPTORS, physchem_model

MOLECULES = ["CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)C(=O)c1ccc(O)cc1", "c1ccncc1CN", "OC(=O)CCl",
             "C[N+](C)(C)C", "[2H]C([2H])Cl", "c1ccccc1"]


@pytest.mark.parametrize("smiles", MOLECULES)
def test_atom_values_add_up_to_rdkit_molecule_values(smiles):
    mol = Chem.MolFromSmiles(smiles)
    table = physchem_per_atom(mol)
    assert table.shape == (mol.GetNumAtoms(), len(PHYSCHEM_COLUMNS)) and table.min() >= 0
    logp_pos, logp_neg, mr, tpsa, _ = table.sum(axis=0)
    assert logp_pos - logp_neg == pytest.approx(Crippen.MolLogP(mol), abs=1e-9)
    assert mr == pytest.approx(Crippen.MolMR(mol), abs=1e-9)
    assert tpsa == pytest.approx(rdMolDescriptors.CalcTPSA(mol), abs=1e-9)


def test_fragments_add_up_to_the_summed_bag():
    bagger = MoleculeBagger(descriptors=PHYSCHEM_DESCRIPTORS, progress=False)
    assert bagger.summable() and bagger._config()["counts_only"]
    bags = bagger.transform(MOLECULES)
    summed = bagger.transform_summed(MOLECULES)
    assert summed[0].shape == (1, bagger.n_features())
    for bag, row in zip(bags, summed):
        np.testing.assert_allclose(np.asarray(bag.sum(axis=0)), row.toarray(), atol=1e-4)
    assert all(row.toarray()[0, -len(PHYSCHEM_COLUMNS):].any() for row in summed)


@pytest.fixture(scope="module")
def fitted():
    frame = load_dataset("solubility")
    train = frame[frame.split == "train"].iloc[:150]
    model = physchem_model(bagger=MoleculeBagger(progress=False)).fit(train.smiles.tolist(),
                                                                      train.target.to_numpy())
    return model, frame[frame.split == "test"].smiles.tolist()[:5]


def test_recipe_settings_and_untouched_bagger():
    mine = MoleculeBagger(progress=False, descriptors=("morgan_parent",))
    model = physchem_model(bagger=mine)
    assert mine.descriptors == ("morgan_parent",)                 # the caller's bagger is cloned
    assert model.bagger.descriptors == PHYSCHEM_DESCRIPTORS
    assert isinstance(model.estimator, BagKernelRegressor)
    with pytest.raises(ValueError, match="task"):
        physchem_model(task="ranking")


def test_contributions_add_up_to_the_prediction(fitted):
    model, query = fitted
    assert model.scaler_ is None                                  # unscaled: sums suffice
    for explanation in model.explain(query):
        table = explanation.instances
        assert len(table) >= 1
        assert explanation.baseline + table.contribution.sum() == pytest.approx(
            explanation.prediction, abs=1e-6)
    np.testing.assert_allclose([e.prediction for e in model.explain(query)], model.predict(query),
                               atol=1e-6)


def test_saved_recipe_predicts_the_same(fitted, tmp_path):
    model, query = fitted
    model.save(tmp_path / "physchem")
    loaded = QSARModel.load(tmp_path / "physchem")
    np.testing.assert_allclose(loaded.predict(query), model.predict(query), rtol=0, atol=1e-9)
