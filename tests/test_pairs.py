"""Pairs: two analogues on their common substructure, the predicted difference split exactly
into the change and the context, the picture, and a frame of pairs."""

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from milearn_core import AdditiveRegressor, BagKernelRegressor
from qsarmil.data import load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel
from qsarmil.pairs import common_substructure, compare, compare_frame

PHENOL, CRESOL = "Oc1ccccc1", "Cc1ccc(O)cc1"
LINKERS = ("c1ccc2ncccc2c1CN1CCNCC1", "c1ccc2ncccc2c1CCN1CCNCC1")  # CH2 vs CH2CH2


@pytest.fixture(scope="module")
def model():
    data = load_dataset("solubility")
    train = data[data.split == "train"].head(150)
    return QSARModel(bagger=MoleculeBagger(progress=False), uncertainty=None).fit(
        train.smiles, train.target)


def test_common_substructure_keeps_rings_whole():
    a, b = Chem.MolFromSmiles("c1ccccc1CC"), Chem.MolFromSmiles("c1ccncc1CC")
    atoms_a, atoms_b, smarts = common_substructure(a, b)
    # The ethyl and its ring carbon: no ring bond is shared, as the ring does not match whole.
    assert len(atoms_a) == len(atoms_b) == 3 and "&@" not in smarts
    atoms_a, atoms_b, smarts = common_substructure(*map(Chem.MolFromSmiles, LINKERS))
    # One connected common part: the quinoline and its CH2; the piperazine lies past the change.
    assert len(atoms_a) == len(atoms_b) == 11 and "#7" in smarts


def test_the_difference_splits_exactly_into_change_and_context(model):
    pair = model.compare(CRESOL, PHENOL, measured_a=-0.62, measured_b=0.0)
    predicted = model.predict([CRESOL, PHENOL])
    assert pair.split == "pair" and pair.atom_level
    assert pair.predicted_difference == pytest.approx(predicted[0] - predicted[1], abs=1e-9)
    assert pair.changed_part + pair.context_part == pytest.approx(pair.predicted_difference, abs=1e-6)
    assert pair.changed_a == (0,) and pair.changed_b == ()  # the methyl is the change
    assert pair.measured_difference == pytest.approx(-0.62)
    # One molecule against the other: a's atoms less b's give the difference.
    assert pair.values_a.sum() - pair.values_b.sum() == pytest.approx(pair.predicted_difference,
                                                                      abs=1e-6)
    assert pair.values_a[list(pair.changed_a)].sum() == pytest.approx(pair.changed_part, abs=1e-9)


def test_each_molecule_from_the_reference_on_request(model):
    pair = model.compare(CRESOL, PHENOL, split="molecules")
    predicted = model.predict([CRESOL, PHENOL])
    assert pair.split == "molecules" and pair.baseline_name == "mean training prediction"
    # The colours: each molecule adds up to its prediction from the shared baseline.
    for values, prediction in ((pair.values_a, predicted[0]), (pair.values_b, predicted[1])):
        assert pair.baseline + values.sum() == pytest.approx(prediction, abs=1e-6)
    assert pair.changed_part + pair.context_part == pytest.approx(pair.predicted_difference, abs=1e-6)
    with pytest.raises(ValueError, match="split must be one of"):
        model.compare(CRESOL, PHENOL, split="atoms")


def _far_atoms(pair, bonds: int) -> list[tuple[int, int]]:
    """(atom of a, atom of b) common pairs at least ``bonds`` bonds from every changed atom
    of a."""
    distances = Chem.GetDistanceMatrix(pair.mol_a)
    return [(i, j) for i, j in zip(pair.common_a, pair.common_b)
            if all(distances[i, c] >= bonds for c in pair.changed_a)]


@pytest.mark.parametrize("estimator", [BagKernelRegressor(kernels=("minmax",)), AdditiveRegressor()],
                         ids=["minmax kernel", "additive"])
def test_the_pair_split_leaves_alike_atoms_at_zero(estimator):
    """The CH2 / CH2CH2 linker of the issue: with radius-2 Morgan environments, shared atoms
    three bonds or more from the change read the same in both molecules and get exactly 0;
    the per-molecule view moves them (the kernel compares whole molecules)."""
    data = load_dataset("solubility")
    train = data[data.split == "train"].head(150)
    morgan = QSARModel(bagger=MoleculeBagger(progress=False, descriptors=("morgan_atoms",)),
                       estimator=estimator, uncertainty=None).fit(train.smiles, train.target)
    pair = morgan.compare(LINKERS[1], LINKERS[0])
    far = _far_atoms(pair, 3)
    assert len(far) >= 5 and pair.split == "pair"
    for i, j in far:
        assert pair.values_a[i] == 0 and pair.values_b[j] == 0
    assert abs(pair.changed_part) > 0
    assert pair.values_a.sum() - pair.values_b.sum() == pytest.approx(pair.predicted_difference,
                                                                      abs=1e-6)
    if isinstance(estimator, BagKernelRegressor):
        each = morgan.compare(LINKERS[1], LINKERS[0], split="molecules")
        assert any(abs(each.values_a[i] - each.values_b[j]) > 1e-6 for i, j in far)


def test_the_pair_picture(model):
    pair = model.compare(*LINKERS)
    svg = pair.draw()
    assert svg.count("<svg") == 1 and "the change" in svg and "against the other" in svg
    assert "per atom, from" in model.compare(*LINKERS, split="molecules").draw()
    assert pair.draw(fmt="png")[:4] == b"\x89PNG"
    assert f"{pair.predicted_difference:+.2f}" in pair.summary()


def test_compare_frame_keeps_every_row(model):
    frame = pd.DataFrame({"id": [1, 2, 3], "smiles_a": [CRESOL, LINKERS[1], "nonsense("],
                          "smiles_b": [PHENOL, LINKERS[0], PHENOL], "ya": [-0.6, 1.0, 0.0],
                          "yb": [0.0, 0.5, 0.0]})
    out = compare_frame(model, frame, measured_a="ya", measured_b="yb")
    assert list(out.id) == [1, 2, 3] and list(out.status) == ["ok", "ok", "failed"]
    ok = out[out.status == "ok"]
    np.testing.assert_allclose(ok.changed_part + ok.context_part, ok.predicted_difference, atol=1e-6)
    assert list(ok.split) == ["pair", "pair"] and list(ok.charge) == ["change", "change"]
    held = compare_frame(model, frame.iloc[:1], charge="holder")
    assert held.charge.iloc[0] == "holder"
    holder = compare(model, CRESOL, PHENOL, charge="holder").changed_part
    assert held.changed_part.iloc[0] == pytest.approx(holder) != ok.changed_part.iloc[0]
    assert compare_frame(model, frame.iloc[:1], split="molecules").charge.iloc[0] == ""
    np.testing.assert_allclose(ok.measured_difference, [-0.6, 0.5])
    assert "nonsense(" in out.error.iloc[2] or out.error.iloc[2]
    with pytest.raises(ValueError, match="no column 'x'"):
        compare_frame(model, frame, smiles_a="x")
    with pytest.raises(ValueError, match="split must be one of"):
        compare_frame(model, frame, split="atoms")


def test_a_search_that_times_out_gives_no_split(model):
    # Fused rings in a row, one ring atom changed: FMCS cannot finish in a second.
    ladder = "C1CC2CC3CC4CC5CC6CC7CC8CC9CCCCC9CC8CC7CC6CC5CC4CC3CC2C1"
    a, b = Chem.MolFromSmiles(ladder), Chem.MolFromSmiles("C1N" + ladder[3:])
    assert common_substructure(a, b, timeout=1, partial=True)[0] == ()  # nothing found so far
    with pytest.raises(ValueError, match="did not finish within 1 s"):
        compare(model, ladder, "C1N" + ladder[3:], timeout=1)


def test_a_long_smiles_is_shortened_in_the_error(model):
    with pytest.raises(ValueError) as caught:
        model.compare("CCO", "C" * 600)
    message = str(caught.value)
    assert message.startswith("'CCCC") and "(600 characters)" in message
    assert "max_heavy_atoms=500" in message and len(message) < 200


def test_a_two_class_model_splits_a_log_odds_difference_over_atoms():
    from qsarmil.attribution import pair_atom_contributions

    data = load_dataset("solubility")
    train = data[data.split == "train"].head(150)
    classifier = QSARModel(bagger=MoleculeBagger(progress=False), uncertainty=None).fit(
        train.smiles, (train.target > train.target.median()).astype(int))
    a, b = (Chem.MolFromSmiles(s) for s in LINKERS[::-1])
    common_a, common_b, _ = common_substructure(a, b)
    values_a, values_b = pair_atom_contributions(classifier, a, b, common_a, common_b)
    log_odds = classifier.estimator_.decision_function(
        classifier.bagger_.transform(list(LINKERS[::-1])))
    assert values_a.sum() - values_b.sum() == pytest.approx(log_odds[0] - log_odds[1], abs=1e-9)
    with pytest.raises(ValueError, match="needs a regression model"):
        classifier.compare(*LINKERS)


def test_a_feature_goes_to_the_molecule_that_holds_more_of_it():
    """Additive model: a's atoms carry exactly the features a holds more of (count excess
    times coefficient), b's those b holds more of, so each atom's value is what its own extra
    features do (cumene against toluene: both hold unmatched methyls)."""
    from qsarmil.attribution import atom_bag

    data = load_dataset("solubility")
    train = data[data.split == "train"].head(150)
    additive = QSARModel(bagger=MoleculeBagger(progress=False, descriptors=("morgan_atoms",)),
                         estimator=AdditiveRegressor(), uncertainty=None).fit(train.smiles,
                                                                              train.target)
    pair = additive.compare("CC(C)c1ccccc1", "Cc1ccccc1", charge="holder")
    counts_a, counts_b = (np.asarray(atom_bag(additive.bagger_, m).sum(axis=0)).ravel()
                          for m in (pair.mol_a, pair.mol_b))
    coef = additive.estimator_.coef_
    excess = counts_a - counts_b
    assert pair.values_a.sum() == pytest.approx((coef * np.clip(excess, 0, None)).sum(), abs=1e-9)
    assert pair.values_b.sum() == pytest.approx((coef * np.clip(-excess, 0, None)).sum(), abs=1e-9)
    # Toluene lies inside cumene: by default all of it goes to cumene's extra methyl.
    to_change = additive.compare("CC(C)c1ccccc1", "Cc1ccccc1")
    assert to_change.changed_b == () and not to_change.values_b.any()
    assert to_change.values_a[list(to_change.changed_a)].sum() == pytest.approx(
        (coef * excess).sum(), abs=1e-9)


def test_bad_common_atoms_and_references_are_refused(model):
    from qsarmil.attribution import pair_atom_contributions

    a, b = Chem.MolFromSmiles(CRESOL), Chem.MolFromSmiles(PHENOL)
    for common_a, common_b, message in (((1, 2), (0,), "must be matched pairwise"),
                                        ((1, 99), (0, 1), "distinct atoms of its molecule"),
                                        ((1, 1), (0, 1), "distinct atoms of its molecule")):
        with pytest.raises(ValueError, match=message):
            pair_atom_contributions(model, a, b, common_a, common_b)
    with pytest.raises(ValueError, match="cannot parse"):
        model.compare(CRESOL, PHENOL, reference="bogus((")


def test_the_difference_is_drawn_on_the_change_it_comes_from(model):
    """Default charge: every share that depends on a changed atom goes to it, in its own
    molecule or (phenol has no changed atom) in the other; "holder" leaves the methyl's
    neighbourhood on the shared ring. Both add up to the predicted difference."""
    to_change = model.compare(CRESOL, PHENOL)
    at_holders = model.compare(CRESOL, PHENOL, charge="holder")
    assert to_change.charge == "change" and at_holders.charge == "holder"
    for pair in (to_change, at_holders):
        assert pair.values_a.sum() - pair.values_b.sum() == pytest.approx(
            pair.predicted_difference, abs=1e-9)
    assert to_change.changed_part == pytest.approx(to_change.predicted_difference, abs=1e-9)
    assert to_change.context_part == pytest.approx(0.0, abs=1e-9)
    assert np.count_nonzero(to_change.values_a) == 1 and not to_change.values_b.any()
    assert abs(at_holders.context_part) > 0.05  # the ring CHs next to the methyl
    # The other way round: phenol's own shares go to cresol's methyl, with the sign turned.
    reverse = model.compare(PHENOL, CRESOL)
    assert not reverse.values_a.any()
    assert reverse.values_b[0] == pytest.approx(to_change.values_a[0], abs=1e-9)
    assert "on the atoms each difference comes from" in to_change.draw()
    assert model.compare(CRESOL, PHENOL, split="molecules").charge is None
    with pytest.raises(ValueError, match="charge must be 'change' or 'holder'"):
        model.compare(CRESOL, PHENOL, charge="atoms")


def test_a_difference_that_depends_on_no_changed_atom_stays_as_context(model):
    from qsarmil.attribution import pair_atom_contributions

    # Every atom matched (given so), a bond order changed: there is no changed atom to
    # charge, so each share stays at the atom that holds it, as under "holder".
    a, b = Chem.MolFromSmiles("C=CCO"), Chem.MolFromSmiles("CCCO")
    atoms = list(range(4))
    to_change = pair_atom_contributions(model, a, b, atoms, atoms)
    at_holders = pair_atom_contributions(model, a, b, atoms, atoms, charge="holder")
    for x, y in zip(to_change, at_holders):
        np.testing.assert_allclose(x, y, atol=1e-12)
    assert np.abs(to_change[0]).sum() > 0
    with pytest.raises(ValueError, match="charge must be 'change' or 'holder'"):
        pair_atom_contributions(model, a, b, atoms, atoms, charge="nearest")


def test_the_atom_split_adds_up_to_the_estimators_shares_in_float64(model):
    from qsarmil.attribution import atom_bag, pair_atom_contributions

    # Many atom pairs of one type: summed in the bags' float32 they missed by 1e-8.
    a, b = (Chem.MolFromSmiles(s) for s in ("Clc1cccc(-c2cccc(Cl)c2Cl)c1Cl", "Clc1cccc(Cl)c1Cl"))
    common_a, common_b, _ = common_substructure(a, b)
    _, shares = model.estimator_.difference_contributions(atom_bag(model.bagger_, a),
                                                          atom_bag(model.bagger_, b))
    for charge in ("change", "holder"):
        values_a, values_b = pair_atom_contributions(model, a, b, common_a, common_b, charge=charge)
        assert values_a.sum() - values_b.sum() == pytest.approx(shares.sum(), abs=1e-12)


def test_a_per_atom_value_goes_to_the_change_two_bonds_away():
    """Crippen types an acid's hydroxyl hydrogen (folded into its O) by the C=O two bonds
    away: acetic acid against its amino alcohol analogue leaves nothing on the shared O."""
    data = load_dataset("solubility")
    train = data[data.split == "train"].head(150)
    physchem = QSARModel(bagger=MoleculeBagger(
        progress=False, descriptors=("morgan_atoms", "atompair_parent", "physchem_atoms")),
        uncertainty=None).fit(train.smiles, train.target)
    pair = physchem.compare("CC(=O)O", "CC(N)O")
    assert pair.context_part == pytest.approx(0.0, abs=1e-12)
    assert abs(physchem.compare("CC(=O)O", "CC(N)O", charge="holder").context_part) > 0.1
