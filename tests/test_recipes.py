"""The recipes: physchem (atom-additive descriptors that add up, exact contributions) and key
fragment (a network that takes the best fragment and names it)."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen, rdMolDescriptors

from milearn_core import BagKernelRegressor, MILClassifier, MILRegressor
from qsarmil.data import load_chembl_sample, load_dataset
from qsarmil.descriptors import PHYSCHEM_COLUMNS, physchem_per_atom
from qsarmil.explain import atom_values
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel
from qsarmil.nonadditive import key_atom_hits, make_nonadditive_task
from qsarmil.recipes import KEY_FRAGMENT_RADIUS, PHYSCHEM_DESCRIPTORS, key_fragment_model, physchem_model

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


def test_key_fragment_recipe_settings_and_untouched_bagger():
    mine = MoleculeBagger(progress=False, bag_type="recap")
    model = key_fragment_model(bagger=mine)
    assert mine.descriptors is None and mine.morgan_radius == 2      # the caller's bagger is cloned
    assert model.bagger.bag_type == "recap" and model.bagger.morgan_radius == KEY_FRAGMENT_RADIUS
    assert model.bagger.descriptors == ("morgan_parent",)
    assert isinstance(model.estimator, MILRegressor) and model.estimator.pooling == "instance_max"
    assert isinstance(key_fragment_model("classification").estimator, MILClassifier)
    with pytest.raises(ValueError, match="task"):
        key_fragment_model(task="ranking")
    with pytest.raises(ValueError, match="fragment bags"):
        key_fragment_model(bagger=MoleculeBagger(bag_type="conformers"))
    with pytest.raises(ValueError, match="include_whole=False"):
        key_fragment_model(bagger=MoleculeBagger(include_whole=True))
    for recipe in (key_fragment_model, physchem_model):
        with pytest.raises(ValueError, match="the recipe sets estimator"):
            recipe(estimator=BagKernelRegressor())


def _every_fourth(task):
    test = np.arange(len(task.smiles)) % 4 == 0
    return task.subset(np.flatnonzero(~test)), task.subset(np.flatnonzero(test))


def _weight_kid(explanations, groups) -> float:
    """Key-atom hits with each atom holding its fragment's instance weight."""
    values = [atom_values(e.mol.GetNumAtoms(), list(e.instances.atoms),
                          e.instances.weight.to_numpy(), combine="max") for e in explanations]
    return float(key_atom_hits(values, groups).mean())


def test_key_fragment_model_learns_the_largest_fragment_and_names_it(tmp_path):
    task = make_nonadditive_task("max_fragment", load_chembl_sample(), max_molecules=400)
    train, test = _every_fourth(task)
    model = key_fragment_model(bagger=MoleculeBagger(progress=False), uncertainty=None)
    model.fit(train.smiles, train.y)
    default = QSARModel(bagger=MoleculeBagger(progress=False), uncertainty=None).fit(train.smiles, train.y)
    assert model.score(test.smiles, test.y) > max(0.6, default.score(test.smiles, test.y))
    explanations = model.explain(test.smiles)
    assert _weight_kid(explanations, test.key_groups) > 0.7
    for e in explanations:  # the winning fragment carries the whole prediction
        contributions = e.instances.contribution.to_numpy()
        assert np.count_nonzero(contributions) == 1
        assert contributions.sum() == pytest.approx(e.prediction, abs=1e-6)
        assert e.atom_contributions is None
    model.save(tmp_path / "model")
    np.testing.assert_array_equal(QSARModel.load(tmp_path / "model").predict(test.smiles),
                                  model.predict(test.smiles))


def test_key_fragment_classifier_finds_the_polar_fragment():
    task = make_nonadditive_task("threshold", load_chembl_sample(), max_molecules=400)
    train, test = _every_fourth(task)
    model = key_fragment_model("classification", MoleculeBagger(progress=False), uncertainty=None)
    assert model.fit(train.smiles, train.y).score(test.smiles, test.y) > 0.8
    positives = [i for i, g in enumerate(test.key_groups) if g]
    explanations = model.explain([test.smiles[i] for i in positives])
    assert len(positives) >= 30
    assert _weight_kid(explanations, [test.key_groups[i] for i in positives]) > 0.7
