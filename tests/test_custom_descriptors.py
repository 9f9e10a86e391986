"""Your own fragment descriptors: callables and transformers, explained, saved and reloaded
only when handed back (nothing from the file runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rdkit.Chem import Crippen, Descriptors
from sklearn.base import BaseEstimator, TransformerMixin

from milearn_core import BagKernelClassifier, BagKernelRegressor, ModelFileError
from qsarmil import QSARModel
from qsarmil.custom_descriptors import whole_molecule
from qsarmil.data import load_dataset
from qsarmil.featurize import MoleculeBagger


def crippen_atoms(fragment, parent, atoms):
    """The fragment's share of the parent's Crippen logP and MR (additive over atoms)."""
    contributions = Crippen._GetAtomContribs(parent)
    return [sum(contributions[a][0] for a in atoms), sum(contributions[a][1] for a in atoms)]


class HeavyAtoms(TransformerMixin, BaseEstimator):
    def fit(self, mols, y=None):
        return self

    def transform(self, mols):
        return np.array([[m.GetNumHeavyAtoms(), m.GetNumAtoms()] for m in mols], dtype=float)


@pytest.fixture(scope="module")
def solubility():
    data = load_dataset("solubility")
    return data[data.split == "train"].head(150), data[data.split == "test"].head(40)


def test_a_callable_descriptor_fits_explains_and_adds_up(solubility):
    train, test = solubility
    bagger = MoleculeBagger(descriptors=("morgan_parent", crippen_atoms), progress=False)
    model = QSARModel(bagger=bagger).fit(train.smiles, train.target)
    assert isinstance(model.estimator_, BagKernelRegressor) and model.estimator_.kernels == ("linear",)
    assert model.bagger_.n_features() == 2048 + 2  # dense bags: 2048 Morgan bits
    explanation = model.explain(test.smiles.iloc[0])
    total = explanation.baseline + explanation.instances.contribution.sum()
    assert total == pytest.approx(explanation.prediction, abs=1e-6)
    assert model.score(test.smiles, test.target) > 0.5


def test_a_transformer_and_a_whole_molecule_descriptor(solubility):
    train, _ = solubility
    logp = whole_molecule(lambda mol: [Descriptors.MolLogP(mol)])
    bagger = MoleculeBagger(descriptors=(HeavyAtoms(), logp), progress=False)
    bags = bagger.fit_transform(train.smiles.head(5))
    assert all(b.shape[1] == 3 for b in bags)
    first = bags[0]
    assert np.allclose(first[:, 2], Descriptors.MolLogP(bagger.provenance_[0].mol))  # every fragment
    labels = (train.target > train.target.median()).map({True: "soluble", False: "insoluble"})
    model = QSARModel(bagger=bagger).fit(train.smiles, labels)
    assert isinstance(model.estimator_, BagKernelClassifier)


def test_a_descriptor_that_fails_or_changes_length_fails_its_row_only():
    def flaky(fragment, parent, atoms):
        if parent.GetNumAtoms() == 5:
            raise RuntimeError("cannot describe pentane")
        return [1.0] * (1 if parent.GetNumAtoms() != 4 else 2)

    bagger = MoleculeBagger(descriptors=(flaky,), progress=False)
    bags = bagger.fit_transform(["CCCCCC", "CCCCC", "CCCC", "CO"])
    assert list(bagger.valid_index_) == [0, 3] and len(bags) == 2
    reasons = {f.index: f.reason for f in bagger.failures_}
    assert "cannot describe pentane" in reasons[1]
    assert "gave 2 values per fragment, not 1" in reasons[2]


def test_bad_custom_settings_are_refused():
    with pytest.raises(ValueError, match="custom descriptors describe fragments"):
        MoleculeBagger(bag_type="conformers", descriptors=(crippen_atoms,)).fit(["CCO"])
    with pytest.raises(ValueError, match="returned shape"):
        MoleculeBagger(descriptors=(lambda f, p, a: [[1, 2], [3, 4]],)).n_features()


def test_a_saved_model_runs_no_code_and_wants_its_descriptors_back(tmp_path, solubility):
    train, test = solubility
    bagger = MoleculeBagger(descriptors=("morgan_parent", crippen_atoms), progress=False)
    model = QSARModel(bagger=bagger).fit(train.smiles, train.target)
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "qsarmil.json").read_text())
    assert config["bagger"]["descriptors"] == ["morgan_parent", "custom:crippen_atoms"]
    assert config["custom_widths"] == {"crippen_atoms": 2}
    with pytest.raises(ModelFileError, match=r"custom descriptors \['crippen_atoms'\]; nothing from "
                                             r"the file is run, so pass them again"):
        QSARModel.load(tmp_path / "m")
    again = QSARModel.load(tmp_path / "m", custom_descriptors={"crippen_atoms": crippen_atoms})
    np.testing.assert_allclose(again.predict(test.smiles), model.predict(test.smiles))

    def other(fragment, parent, atoms):
        return [0.0, 0.0, 0.0]

    with pytest.raises(ModelFileError, match="gives 3 values per fragment; the model was trained on 2"):
        QSARModel.load(tmp_path / "m", custom_descriptors={"crippen_atoms": other})
    with pytest.raises(ModelFileError, match="were given but the model does not use them"):
        QSARModel.load(tmp_path / "m", custom_descriptors={"crippen_atoms": crippen_atoms,
                                                           "x": other})


def test_a_forged_custom_entry_is_refused(tmp_path, solubility):
    train, _ = solubility
    model = QSARModel(bagger=MoleculeBagger(progress=False)).fit(train.smiles.head(40),
                                                                 train.target.head(40))
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "qsarmil.json"
    config = json.loads(path.read_text())
    config["bagger"]["descriptors"] = ["morgan_atoms", "custom:os.system"]
    path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="do not match custom_widths"):
        QSARModel.load(tmp_path / "m")
    config["custom_widths"] = {"os.system": 10**9}
    path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="custom_widths must map"):
        QSARModel.load(tmp_path / "m")
