"""Atom-level contributions and the reference baseline: exact sums, fragments as sums of their
atoms, one-fragment molecules drawn atom by atom, and each choice of reference."""

import numpy as np
import pytest

from milearn_core import AdditiveRegressor, BagKernelClassifier, BagKernelRegressor
from qsarmil.attribution import atom_bag, atom_contributions, atom_level_available
from qsarmil.data import load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel

IBUPROFEN = "CC(C)Cc1ccc(C(C)C(=O)O)cc1"
METFORMIN = "CN(C)C(=N)N=C(N)N"  # one BRICS fragment
CAFFEINE = "Cn1cnc2c1c(=O)n(C)c(=O)n2C"  # one BRICS fragment
QUERY = [IBUPROFEN, METFORMIN, CAFFEINE, "CCOC(=O)c1ccc(NC(=O)c2ccccc2)cc1", "OCCc1ccncc1"]


@pytest.fixture(scope="module")
def solubility():
    data = load_dataset("solubility")
    return data[data.split == "train"].head(120)


def _fit(train, estimator=None, **bagger):
    return QSARModel(bagger=MoleculeBagger(progress=False, **bagger), estimator=estimator,
                     uncertainty=None).fit(train.smiles, train.target)


@pytest.fixture(scope="module")
def models(solubility):
    """The default (kernel chosen by leave-one-out), the MinMax kernel, the additive model."""
    return {"default": _fit(solubility),
            "minmax": _fit(solubility, BagKernelRegressor(kernels=("minmax",))),
            "additive": _fit(solubility, AdditiveRegressor(),
                             descriptors=("morgan_atoms", "atompair_parent"))}


@pytest.mark.parametrize("name", ["default", "minmax", "additive"])
def test_atoms_add_up_to_the_prediction_and_fragments_to_their_atoms(models, name):
    model = models[name]
    assert atom_level_available(model)
    for e in model.explain(QUERY):
        atoms, fragments = e.atom_contributions, e.instances
        assert len(atoms) == e.mol.GetNumAtoms() and e.has_atom_level
        assert e.baseline + atoms.sum() == pytest.approx(e.prediction, abs=1e-6)
        assert e.baseline + fragments.contribution.sum() == pytest.approx(e.prediction, abs=1e-6)
        for members, value in zip(fragments.atoms, fragments.contribution):
            assert atoms[list(members)].sum() == pytest.approx(value, abs=1e-6)


def test_the_atom_bag_sums_to_the_molecule(models):
    model = models["default"]
    mol = model.explain(CAFFEINE).mol
    summed = model.bagger_.transform_summed([CAFFEINE])[0]
    np.testing.assert_allclose(np.asarray(atom_bag(model.bagger_, mol).sum(axis=0)).ravel(),
                               np.asarray(summed.toarray()).ravel(), rtol=1e-6, atol=1e-6)


def test_minmax_atoms_differ_from_an_even_split(models):
    """Non-trivial: the kernel model's atoms of one fragment do not all carry the same value."""
    e = models["minmax"].explain(CAFFEINE)
    assert len(e.instances) == 1  # caffeine is one BRICS fragment
    assert np.ptp(e.atom_contributions) > 0.05


def test_one_fragment_molecules_are_drawn_atom_by_atom(models):
    e = models["default"].explain(METFORMIN)
    assert len(e.instances) == 1
    atoms, fragment = e.atom_values(signed=True), e.atom_values(signed=True, level="fragments")
    assert len(set(np.round(fragment, 9))) == 1  # the fragment level: one colour, says nothing
    assert len(set(np.round(atoms, 6))) >= 3
    assert e.draw() == e.draw(level="atoms") != e.draw(level="fragments")
    assert "per atom" in e.draw()


def test_the_default_reference_is_the_mean_training_prediction(models, solubility):
    model = models["default"]
    mean = float(np.mean(model.predict(solubility.smiles)))
    assert model.reference_prediction_ == pytest.approx(mean, abs=1e-9)
    assert abs(mean - model.estimator_.intercept_) > 0.5  # the intercept is no reference
    e = model.explain(IBUPROFEN)
    assert e.baseline == pytest.approx(mean) and e.baseline_name == "mean training prediction"
    assert f"baseline {mean:.2f} (mean training prediction)" in e.legend()
    raw = model.explain(IBUPROFEN, reference="intercept")
    assert raw.baseline == pytest.approx(model.estimator_.intercept_)
    # The shift is spread evenly over the atoms: each atom moves by the same amount.
    moved = raw.atom_contributions - e.atom_contributions
    np.testing.assert_allclose(moved, (mean - raw.baseline) / e.mol.GetNumAtoms())


def test_a_named_reference_molecule_and_set(models):
    model = models["minmax"]
    pair = model.explain(["c1ccccc1O", "Cc1ccccc1O"], reference="c1ccccc1O")
    assert pair[0].baseline == pytest.approx(pair[0].prediction)
    assert pair[0].atom_contributions.sum() == pytest.approx(0.0, abs=1e-9)
    assert pair[1].baseline_name == "reference c1ccccc1O"
    assert pair[1].baseline + pair[1].atom_contributions.sum() == pytest.approx(pair[1].prediction)
    several = model.explain(IBUPROFEN, reference=["CCO", "CCCO", "c1ccccc1"])
    assert several.baseline == pytest.approx(float(np.mean(model.predict(["CCO", "CCCO", "c1ccccc1"]))))
    assert several.baseline_name == "mean of 3 reference molecules"
    with pytest.raises(ValueError, match="reference molecule 0"):
        model.explain(IBUPROFEN, reference="nonsense(")


def test_the_binary_kernel_classifier_splits_its_log_odds_over_atoms(solubility):
    labels = (solubility.target > solubility.target.median()).astype(int)
    model = QSARModel(bagger=MoleculeBagger(progress=False), uncertainty=None).fit(
        solubility.smiles, labels)
    assert isinstance(model.estimator_, BagKernelClassifier) and atom_level_available(model)
    e = model.explain(IBUPROFEN)
    log_odds = float(model.estimator_.decision_function(model.bagger_.transform([IBUPROFEN]))[0])
    assert e.baseline + e.atom_contributions.sum() == pytest.approx(log_odds, abs=1e-6)
    assert e.baseline_name == "mean training prediction"


def test_models_that_do_not_split_over_atoms_say_so(solubility):
    # Per-fragment Morgan sets drop duplicate environments per fragment: atoms do not add up.
    model = _fit(solubility.head(40), descriptors=("morgan_parent",))
    assert not atom_level_available(model)
    e = model.explain(IBUPROFEN)
    assert not e.has_atom_level
    with pytest.raises(ValueError, match="atom-level values need"):
        e.draw(level="atoms")
    with pytest.raises(ValueError, match="do not split over atoms"):
        atom_contributions(model, [e.mol])
