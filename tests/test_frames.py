"""qsarmil.frames and the KNIME node scripts in tutorials/knime, run against a stand-in knio."""

from __future__ import annotations

import runpy
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from milearn_core import BagWrapper
from qsarmil.data import load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.frames import explain_frame, find_smiles_column, picture_frame, predict_frame, train_frame

NODES = Path(__file__).resolve().parents[1] / "tutorials" / "knime"


# ----------------------------------------------------------------------------- stand-in knio


def assert_knime_types(df: pd.DataFrame) -> None:
    """What KNIME's Table.from_pandas can type: unique RowIDs, text column names, and columns of
    numbers, booleans, text or bytes (missing cells allowed), never tuples, lists or mixtures."""
    assert df.index.is_unique
    for name, column in df.items():
        assert isinstance(name, str), name
        if column.dtype == object:
            kinds = {type(v) for v in column if v is not None and v is not pd.NA}
            assert kinds in (set(), {str}, {bytes}), (name, kinds)
        else:
            assert isinstance(column.dtype, pd.StringDtype) or column.dtype.kind in "biuf", (
                name, column.dtype)


class Table:
    """Stand-in for knime.scripting.io.Table: a pandas frame in, the same frame out."""

    def __init__(self, df: pd.DataFrame):
        self.df = df

    def to_pandas(self) -> pd.DataFrame:
        return self.df.copy()

    @classmethod
    def from_pandas(cls, df: pd.DataFrame, row_ids: str = "auto") -> Table:
        assert_knime_types(df)
        return cls(df)


def run_node(script: str, table: pd.DataFrame, monkeypatch, **flow_variables) -> pd.DataFrame:
    """Run a node script from tutorials/knime with ``table`` as input table 0."""
    knio = types.ModuleType("knime.scripting.io")
    knio.input_tables = [Table(table)]
    knio.output_tables = [None]
    knio.flow_variables = dict(flow_variables)
    knio.Table = Table
    scripting = types.ModuleType("knime.scripting")
    scripting.io = knio
    knime = types.ModuleType("knime")
    knime.scripting = scripting
    for name, module in (("knime", knime), ("knime.scripting", scripting),
                         ("knime.scripting.io", knio)):
        monkeypatch.setitem(sys.modules, name, module)
    runpy.run_path(str(NODES / script), run_name="__main__")
    assert isinstance(knio.output_tables[0], Table), f"{script} set no output table"
    return knio.output_tables[0].df


def knime_rows(df: pd.DataFrame) -> pd.DataFrame:
    """A table as KNIME hands it over: RowIDs "Row0", "Row1", ... as the index."""
    return df.set_axis([f"Row{i}" for i in range(len(df))])


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return load_dataset("solubility")


@pytest.fixture(scope="module")
def model_folder(data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("knime") / "model"
    train = knime_rows(data.head(100)[["smiles", "target"]])
    mp = pytest.MonkeyPatch()
    try:
        with threadpool_limits(1):  # multi-threaded BLAS crawls on a busy machine
            summary = run_node("train_node.py", train, mp, model_folder=str(folder))
    finally:
        mp.undo()
    assert summary.task.tolist() == ["regression"] and summary.molecules.tolist() == [100]
    return folder


@pytest.fixture()
def query(data) -> pd.DataFrame:
    """A table a user would score: ID cells that look like numbers, a clashing column name,
    a SMILES column named Canonical_SMILES, an unparsable and a missing SMILES."""
    smiles = list(data.smiles[100:110])
    smiles[3], smiles[6] = "C1CC(", None
    return knime_rows(pd.DataFrame({"ID": [f"{i:05d}" for i in range(10)],
                                    "Canonical_SMILES": smiles, "Prediction": 1.5}))


# ----------------------------------------------------------------------------- node scripts


def test_predict_node_keeps_rows_rowids_and_cells(model_folder, query, monkeypatch):
    out = run_node("predict_node.py", query, monkeypatch, model_folder=str(model_folder))
    assert list(out.index) == list(query.index)
    pd.testing.assert_frame_equal(out[query.columns], query)
    assert list(out.columns[:9]) == ["ID", "Canonical_SMILES", "Prediction", "qsarmil_prediction",
                                     "status", "error", "stripped", "prediction_lower",
                                     "prediction_upper"]
    assert out.qsarmil_prediction.dtype == np.float64
    ok = out.status == "ok"
    assert (out.prediction_lower[ok] < out.qsarmil_prediction[ok]).all()
    assert (out.qsarmil_prediction[ok] < out.prediction_upper[ok]).all()
    assert out.nearest_1_id[ok].str.startswith("row ").all() and out.nearest_1_id[~ok].isna().all()
    failed = out.status == "failed"
    assert failed.tolist() == [i in (3, 6) for i in range(10)]
    assert out.qsarmil_prediction[failed].isna().all() and out.qsarmil_prediction[~failed].notna().all()
    assert "RDKit" in out.error.iloc[3] and out.error.iloc[6] == "empty SMILES"
    assert (out.error[~failed] == "").all()


def test_predict_node_takes_the_interval_level(model_folder, query, monkeypatch):
    default = run_node("predict_node.py", query, monkeypatch, model_folder=str(model_folder))
    narrow = run_node("predict_node.py", query, monkeypatch, model_folder=str(model_folder),
                      interval_level="0.5")
    ok = default.status == "ok"
    assert (default.interval_level[ok] == 0.9).all() and (narrow.interval_level[ok] == 0.5).all()
    assert ((narrow.prediction_upper - narrow.prediction_lower)[ok]
            < (default.prediction_upper - default.prediction_lower)[ok]).all()


def test_predict_node_equals_predict_table(model_folder, query, monkeypatch, data):
    from qsarmil.model import QSARModel

    out = run_node("predict_node.py", query, monkeypatch, model_folder=str(model_folder),
                   smiles_column="canonical_smiles", n_jobs=1)
    expected = QSARModel.load(model_folder).predict_table(
        ["" if s is None else s for s in query.Canonical_SMILES])
    np.testing.assert_array_equal(out.qsarmil_prediction.to_numpy(), expected.prediction.to_numpy())


def test_explain_node_gives_a_long_table_with_the_baseline(model_folder, query, monkeypatch):
    out = run_node("explain_node.py", query, monkeypatch, model_folder=str(model_folder))
    assert list(out.columns) == ["row_id", "instance", "fragment", "atoms", "weight",
                                 "contribution", "baseline", "prediction", "status", "error"]
    assert list(out.row_id.unique()) == list(query.index)  # every input row, in order
    assert out.atoms[out.status == "ok"].str.fullmatch(r"\d+(,\d+)*").all()
    assert (out.groupby("row_id").size()[["Row3", "Row6"]] == 1).all()
    failed = out[out.status == "failed"]
    assert failed.row_id.tolist() == ["Row3", "Row6"] and failed.prediction.isna().all()
    ok = out[out.status == "ok"]
    per_molecule = ok.groupby("row_id").agg(total=("contribution", "sum"),
                                            baseline=("baseline", "first"),
                                            prediction=("prediction", "first"))
    np.testing.assert_allclose(per_molecule.baseline + per_molecule.total, per_molecule.prediction,
                               rtol=1e-5, atol=1e-5)
    weights = ok.groupby("row_id").weight.sum()
    np.testing.assert_allclose(weights, 1.0, rtol=1e-5)


def test_explain_node_carries_an_id_column(model_folder, query, monkeypatch):
    out = run_node("explain_node.py", query, monkeypatch, model_folder=str(model_folder),
                   id_column="ID")
    assert out.columns[0] == "ID" and list(out.ID.unique()) == list(query.ID)
    assert out.ID.iloc[0] == "00000"  # text stays text


@pytest.mark.parametrize("fmt, kind, start", [("svg", str, "<?xml"), ("png", bytes, b"\x89PNG")])
def test_pictures_node(model_folder, query, monkeypatch, fmt, kind, start):
    out = run_node("pictures_node.py", query, monkeypatch, model_folder=str(model_folder),
                   picture_format=fmt)
    assert list(out.index) == list(query.index) and list(out.columns) == [*query.columns, "picture"]
    missing = out.picture.isna()
    assert missing.tolist() == [i in (3, 6) for i in range(10)]
    assert all(isinstance(p, kind) and p.startswith(start) for p in out.picture[~missing])


# ----------------------------------------------------------------------------- functions


@pytest.fixture(scope="module")
def classifier(data):
    train = data.head(80).assign(active=lambda d: np.where(d.target > -2, "active", "inactive"))
    with threadpool_limits(1):
        return train_frame(train, target_column="Active", bagger=MoleculeBagger(progress=False),
                           estimator=BagWrapper(LogisticRegression(max_iter=500)))


def test_classifier_columns_are_typed(classifier, query):
    out = predict_frame(classifier, query)
    assert_knime_types(out)
    assert {"proba_active", "proba_inactive"} <= set(out.columns)
    assert isinstance(out.qsarmil_prediction.dtype, pd.StringDtype)
    assert out.qsarmil_prediction.isna().tolist() == [i in (3, 6) for i in range(10)]
    ok = out.status == "ok"
    np.testing.assert_allclose(out.proba_active[ok] + out.proba_inactive[ok], 1.0)
    assert out.proba_active[~ok].isna().all()
    assert_knime_types(explain_frame(classifier, query))


def test_integer_labels_become_nullable_integers(data, query):
    train = data.head(60).assign(target=lambda d: (d.target > -2).astype(int))
    with threadpool_limits(1):
        model = train_frame(train, task="classification", bagger=MoleculeBagger(progress=False),
                            estimator=BagWrapper(LogisticRegression(max_iter=500)))
    out = predict_frame(model, query)
    assert out.qsarmil_prediction.dtype == "Int64" and out.qsarmil_prediction.isna().sum() == 2


def test_a_notebook_index_with_duplicates_is_kept(classifier, query):
    table = query.set_axis([7, 7, 3, 1, 1, 0, 9, 9, 2, 5])
    out = predict_frame(classifier, table)
    assert list(out.index) == list(table.index)
    assert out.status.tolist() == ["failed" if i in (3, 6) else "ok" for i in range(10)]


def test_empty_tables(model_folder, query):
    for frame in (predict_frame(str(model_folder), query.head(0)),
                  explain_frame(str(model_folder), query.head(0))):
        assert len(frame) == 0
        assert_knime_types(frame)


def test_smiles_column_detection():
    assert find_smiles_column(["id", "SMILES"]) == "SMILES"
    assert find_smiles_column(["Mol", "canonical_smiles"]) == "canonical_smiles"
    assert find_smiles_column(["a", "Structure"], "structure") == "Structure"
    with pytest.raises(KeyError, match=r"no SMILES column .*columns: \['id', 'x'\]"):
        find_smiles_column(["id", "x"])
    with pytest.raises(KeyError, match="look like SMILES"):
        find_smiles_column(["smiles", "Smiles "])
    with pytest.raises(KeyError, match="no column named 'smi'"):
        find_smiles_column(["smiles"], "smi")


def test_a_missing_target_names_the_rowid(data):
    train = knime_rows(data.head(8)[["smiles", "target"]])
    train.loc["Row5", "target"] = np.nan
    with pytest.raises(ValueError, match="1 rows have no 'target' value: Row5"):
        train_frame(train)


def test_picture_format_is_checked(classifier, query):
    with pytest.raises(ValueError, match="fmt"):
        picture_frame(classifier, query, fmt="gif")
