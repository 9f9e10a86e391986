"""QSARModel at its boundary: odd inputs get a clear answer naming the input row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from qsarmil.data import load_dataset
from qsarmil.model import QSARModel


@pytest.fixture(scope="module")
def small():
    data = load_dataset("solubility").head(80)
    return QSARModel().fit(data.smiles, data.target), data


def test_a_single_string_is_one_molecule(small):
    model, _ = small
    table = model.predict_table("CCO")
    assert len(table) == 1 and table.smiles.iloc[0] == "CCO" and table.status.iloc[0] == "ok"
    assert model.predict("CCO").shape == (1,)


def test_chunked_prediction_matches_one_batch_and_keeps_input_rows(small):
    model, data = small
    smiles = [*data.smiles[:7], "not a smiles", *data.smiles[7:12]]
    whole = model.predict_table(smiles, chunk_size=10_000)
    chunks = list(model.iter_predict(iter(smiles), chunk_size=3))  # a generator, not a list
    assert [len(c) for c in chunks] == [3, 3, 3, 3, 1]
    joined = model.predict_table(smiles, chunk_size=3)
    assert list(joined.index) == list(range(len(smiles)))
    np.testing.assert_array_equal(joined.prediction.to_numpy(), whole.prediction.to_numpy())
    assert joined.status.tolist() == whole.status.tolist()
    assert joined.status.iloc[7] == "failed" and joined.smiles.iloc[7] == "not a smiles"


def test_empty_input(small):
    model, _ = small
    assert len(model.predict_table([])) == 0
    with pytest.raises(ValueError, match="no molecules"):
        QSARModel().fit([], [])
    with pytest.raises(ValueError, match="chunk_size"):
        list(model.iter_predict(["CCO"], chunk_size=0))


@pytest.mark.parametrize("bad, message", [
    (None, "row 2: target None is missing"), (float("nan"), "row 2: target nan is missing"),
    (float("inf"), "row 2: target inf is missing"), (">5", "row 2: target '>5' is not a number"),
])
def test_bad_targets_name_the_input_row_and_value(bad, message):
    smiles = ["CCO", "CCN", "c1ccccc1", "CC(=O)O"]
    y = np.array([0.1, 0.2, bad, 0.4], dtype=object)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        QSARModel().fit(smiles, y)


def test_length_mismatch_and_non_iterables():
    with pytest.raises(ValueError, match="2 molecules but 3 targets"):
        QSARModel().fit(["CCO", "CCN"], [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="expected SMILES"):
        QSARModel().fit(42, [1.0])


def test_one_target_per_molecule():
    smiles = ["CCO", "CCN", "c1ccccc1", "CC(=O)O", "CCCO", "CCCN"]
    y = np.array([0.1, 0.2, 0.9, 0.4, 0.3, 0.5])
    # Two columns would fit but could not predict: refused at fit, with the shape.
    with pytest.raises(ValueError, match=r"one target per molecule .* shape \(6, 2\)"):
        QSARModel(uncertainty=None).fit(smiles, np.c_[y, 2 * y])
    frame = pd.DataFrame({"t": y, "u": 2 * y})
    with pytest.raises(ValueError, match=r"shape \(6, 2\)"):
        QSARModel(uncertainty=None).fit(smiles, frame)
    # One column is one target, as an array or a frame.
    expected = QSARModel(uncertainty=None).fit(smiles, y).predict(smiles)
    for column in (y[:, None], frame[["t"]]):
        np.testing.assert_allclose(QSARModel(uncertainty=None).fit(smiles, column).predict(smiles),
                                   expected)


IMIPRAMINE = "CN(C)CCCN1c2ccccc2CCc2ccccc21"


def test_a_salt_is_scored_as_its_parent(small):
    model, _ = small
    table, instances = model.predict_with_weights(
        ["CC(=O)[O-].[Na+]", "CC(=O)O", f"{IMIPRAMINE}.Cl", IMIPRAMINE])
    assert table.prediction.iloc[0] == table.prediction.iloc[1]  # sodium acetate = acetic acid
    assert table.prediction.iloc[2] == table.prediction.iloc[3]
    assert table.stripped.tolist() == ["Na+", "", "HCl", ""]
    assert not instances[2].smiles.isin(["Cl", "[Cl-]"]).any()  # no zero-weight chloride
    assert instances[2].smiles.tolist() == instances[3].smiles.tolist()


def test_a_metal_complex_is_kept_whole(small):
    model, _ = small
    table, instances = model.predict_with_weights(["N.N.Cl[Pt]Cl"])
    assert table.status.iloc[0] == "ok" and table.stripped.iloc[0] == ""
    assert sorted(a for atoms in instances[0].atoms for a in atoms) == [0, 1, 2, 3, 4]


def test_2d_descriptors_ignore_stereochemistry(small):
    """Both thalidomide enantiomers get one prediction (the README says so)."""
    model, _ = small
    r, s = "O=C1CC[C@@H](N2C(=O)c3ccccc3C2=O)C(=O)N1", "O=C1CC[C@H](N2C(=O)c3ccccc3C2=O)C(=O)N1"
    predictions = model.predict([r, s])
    assert predictions[0] == predictions[1]


def test_rdkit_messages_in_the_error_column_and_nothing_on_the_console(small, capfd):
    model, _ = small
    bad = ["CN(C)(C)(C)C", "c1cccc1", "C1CC", "CC(", "[Xx]", "C(C)(C)(C)(C)C"] * 5
    table = model.predict_table(bad)
    assert (table.status == "failed").all()
    assert table.error.iloc[0] == ("RDKit cannot parse this SMILES: Explicit valence for atom # 1 "
                                   "N, 5, is greater than permitted")
    assert table.error.iloc[2] == "RDKit cannot parse this SMILES: unclosed ring"
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_models_saved_before_salt_stripping_keep_their_behaviour(small, tmp_path):
    model, data = small
    model.save(tmp_path / "m")
    file = tmp_path / "m" / "qsarmil.json"
    config = json.loads(file.read_text())
    assert config["bagger"]["strip_salts"] is True and config["task"] == "regression"
    del config["bagger"]["strip_salts"]  # as written by an older qsarmil
    file.write_text(json.dumps(config))
    old = QSARModel.load(tmp_path / "m")
    assert old.bagger_.strip_salts is False
    assert old.predict_table("CC(=O)[O-].[Na+]").stripped.iloc[0] == ""
    np.testing.assert_array_equal(old.predict(data.smiles[:10]), model.predict(data.smiles[:10]))
