"""QSARModel at its boundary: odd inputs get a clear answer naming the input row."""

from __future__ import annotations

import numpy as np
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
