"""DataFrame in, DataFrame out: qsarmil for a KNIME Python Script node and for notebooks.

In a KNIME node::

    import knime.scripting.io as knio
    from qsarmil.frames import predict_frame

    df = knio.input_tables[0].to_pandas()
    knio.output_tables[0] = knio.Table.from_pandas(predict_frame("/models/solubility", df))

Every function keeps the input's rows, order and index (KNIME's RowIDs) and adds columns whose
cells KNIME can type: numbers (NaN where a molecule failed), text, nullable integers or
booleans for class labels, never Python tuples or lists. Our columns never overwrite the
input's: a clash is resolved as in ``qsarmil predict`` (``prediction`` becomes
``qsarmil_prediction``). The SMILES column is found as the command line finds it (the first of
:data:`qsarmil.columns.SMILES_NAMES`, ignoring case) unless it is named. Example node scripts are
in ``tutorials/knime/``.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator, Sequence
from itertools import islice

import numpy as np
import pandas as pd

from .columns import SMILES_NAMES, added_columns, smiles_candidates
from .model import QSARModel
from .scale import load_cached, predict_chunks

__all__ = ["train_frame", "predict_frame", "explain_frame", "picture_frame", "find_smiles_column"]

_CHUNK = 1000  # molecules per scoring call: memory beyond the output stays flat
# The long table's columns and their types (prediction: float, or class labels as they come).
_EXPLAIN_TYPES = {"instance": "Int64", "fragment": "str", "atoms": "str", "weight": "float64",
                  "contribution": "float64", "baseline": "float64", "prediction": None,
                  "status": "str", "error": "str", "conformer_id": "Int64"}


def find_smiles_column(columns: Sequence[Hashable], requested: Hashable | None = None) -> Hashable:
    """The SMILES column: ``requested`` (exact, else ignoring case), else the first of
    :data:`~qsarmil.columns.SMILES_NAMES` present, ignoring case.

    Raises
    ------
    KeyError
        No such column (the message lists the columns), or more than one matches.
    """
    if requested is not None:
        return _find_column(columns, requested)
    columns = list(columns)
    hits = [columns[i] for i in smiles_candidates(columns)]
    if len(hits) > 1:
        raise KeyError(f"columns {hits} all look like SMILES; name one with smiles_column=")
    if hits:
        return hits[0]
    raise KeyError(f"no SMILES column (looked for {', '.join(SMILES_NAMES)}, ignoring case; "
                   f"columns: {list(columns)}); name it with smiles_column=")


def _find_column(columns: Sequence[Hashable], name: Hashable) -> Hashable:
    if name in list(columns):
        return name
    hits = [c for c in columns if _folded(c) == _folded(name)]
    if len(hits) != 1:
        found = "no column" if not hits else f"{len(hits)} columns"
        raise KeyError(f"{found} named {name!r} (ignoring case; columns: {list(columns)})")
    return hits[0]


def _folded(name: Hashable) -> str:
    return str(name).strip().casefold()


def smiles_texts(column: pd.Series) -> list[str]:
    """A column's cells as SMILES text; a missing cell (None, NaN, KNIME's missing) is ""."""
    return ["" if _missing(v) else str(v) for v in column]


def _missing(value) -> bool:
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def _model_and_path(model: QSARModel | str | os.PathLike) -> tuple[QSARModel, str | None]:
    """A fitted model, and its folder when given one (loaded once per process)."""
    if isinstance(model, (str, os.PathLike)):
        return load_cached(model), os.fspath(model)
    return model, None


def _chunks(items: list, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def knime_typed(column: pd.Series) -> pd.Series:
    """A column KNIME can type: object columns become nullable numbers, booleans or text
    (binary cells, such as PNG pictures, stay bytes; missing cells stay missing)."""
    if column.dtype != object or not len(column):
        return column.astype("str") if column.dtype == object else column
    if {type(v) for v in column if not _missing(v)} <= {bytes}:
        return column
    typed = column.convert_dtypes()
    if typed.dtype == object:  # mixed kinds: text, missing cells kept missing
        typed = column.map(lambda v: pd.NA if _missing(v) else str(v)).astype("string")
    return typed


def _with_columns(df: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``ours`` (same rows, in order) appended; clashing names get the prefix."""
    names = added_columns([str(c) for c in df.columns], [str(c) for c in ours.columns])
    out = df.copy()
    for name, column in zip(names, ours.columns):
        out[name] = knime_typed(ours[column]).set_axis(df.index)
    return out


def train_frame(df: pd.DataFrame, smiles_column: Hashable | None = None,
                target_column: Hashable = "target", task: str | None = None,
                **model_options) -> QSARModel:
    """Fit a :class:`QSARModel` on a table's SMILES and target columns.

    Parameters
    ----------
    df : DataFrame
        One molecule per row.
    smiles_column, target_column : column names
        Found ignoring case; the SMILES column is detected when not given.
    task : {"regression", "classification"}, optional
        Default: the model's (detected from the labels).
    **model_options
        Passed to :class:`QSARModel` (``bagger=``, ``estimator=``, ...).

    Raises
    ------
    ValueError
        A row without a target (the message names its index, e.g. KNIME's RowID).
    """
    smiles = df[find_smiles_column(df.columns, smiles_column)]
    target = df[_find_column(df.columns, target_column)]
    missing = df.index[target.isna().to_numpy()]
    if len(missing):
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise ValueError(f"{len(missing)} rows have no {target.name!r} value: {shown}")
    options = model_options if task is None else {**model_options, "task": task}
    return QSARModel(**options).fit(smiles_texts(smiles), target.to_numpy())


def predict_frame(model: QSARModel | str | os.PathLike, df: pd.DataFrame,
                  smiles_column: Hashable | None = None, n_jobs: int = 1,
                  scheduler=None, level: float | None = None) -> pd.DataFrame:
    """The input table with the model's columns added.

    Parameters
    ----------
    model : QSARModel or path
        A fitted model or the folder it was saved to.
    df : DataFrame
        Its columns, order and index come back unchanged.
    smiles_column : column name, optional
        Detected when not given (see :func:`find_smiles_column`).
    n_jobs, scheduler
        Where scoring runs (see :func:`qsarmil.scale.predict_chunks`).
    level : float, optional
        Level of the prediction intervals or class sets (default: the model's, 0.9).

    Returns
    -------
    DataFrame
        ``df`` plus ``prediction``, ``proba_<class>`` (classifiers), ``status`` ("ok" or
        "failed"), ``error`` and ``stripped`` (counter-ions removed), then the interval (or
        class set), domain and nearest-training-molecule columns, as
        :meth:`QSARModel.predict_table` gives them. A failed row keeps its cells, with a
        NaN (or missing) prediction and the error text.
    """
    model, path = _model_and_path(model)
    smiles = smiles_texts(df[find_smiles_column(df.columns, smiles_column)])
    tables = list(predict_chunks(model, _chunks(smiles, _CHUNK), n_jobs=n_jobs,
                                 scheduler=scheduler, model_path=path, level=level))
    result = pd.concat(tables) if tables else model.predict_table([], level=level)
    return _with_columns(df, result.drop(columns="smiles"))


def _explanations(model: QSARModel, smiles: list[str]) -> Iterator:
    for chunk in _chunks(smiles, _CHUNK):
        yield from model.explain(chunk)


def _instance_rows(explanation) -> dict[str, list]:
    """The long-table columns of one molecule (one row, mostly empty, if it failed)."""
    n = 1 if explanation.instances is None else len(explanation.instances)
    frame = explanation.instances if explanation.instances is not None else pd.DataFrame(index=[0])
    nan = [np.nan] * n
    rows = {
        "instance": frame["instance"].tolist() if "instance" in frame else [pd.NA] * n,
        "fragment": frame["smiles"].tolist() if "smiles" in frame else [""] * n,
        "atoms": [",".join(map(str, a)) for a in frame["atoms"]] if "atoms" in frame else [""] * n,
        "weight": frame["weight"].tolist() if "weight" in frame else nan,
        "contribution": frame["contribution"].tolist() if "contribution" in frame else nan,
        "baseline": [np.nan if explanation.baseline is None else explanation.baseline] * n,
        "prediction": [explanation.prediction] * n,
        "status": [explanation.status] * n,
        "error": [explanation.error] * n,
        "conformer_id": frame["conformer_id"].tolist() if "conformer_id" in frame else [pd.NA] * n,
    }
    return rows


def explain_frame(model: QSARModel | str | os.PathLike, df: pd.DataFrame,
                  smiles_column: Hashable | None = None, id_column: Hashable | None = None
                  ) -> pd.DataFrame:
    """A long table: one row per instance (fragment or conformer) of each input molecule.

    Returns
    -------
    DataFrame
        ``row_id`` (the input index, e.g. KNIME's RowID) or the ``id_column`` values under that
        column's name; ``instance``; ``fragment`` (SMILES); ``atoms`` (parent atom indices as
        text, "3,4,5"); ``weight``; ``contribution`` (signed, NaN where the model gives none);
        ``baseline`` (the intercept: prediction = baseline + sum of contributions, NaN where
        the model has none); ``prediction``, ``status``, ``error`` of the molecule, and
        ``conformer_id`` for conformer bags. A failed molecule is one row, status "failed".
    """
    model, _ = _model_and_path(model)
    smiles = smiles_texts(df[find_smiles_column(df.columns, smiles_column)])
    ids = df.index.to_series() if id_column is None else df[_find_column(df.columns, id_column)]
    columns: dict[str, list] = {}
    positions: list[int] = []
    for position, explanation in enumerate(_explanations(model, smiles)):
        rows = _instance_rows(explanation)
        positions += [position] * len(rows["status"])
        for name, values in rows.items():
            columns.setdefault(name, []).extend(values)
    id_name = "row_id" if id_column is None else str(ids.name)
    ours = pd.DataFrame(columns or {name: [] for name in _EXPLAIN_TYPES})
    types = {name: kind for name, kind in _EXPLAIN_TYPES.items() if kind or not len(ours)}
    ours = ours.astype({name: kind or "float64" for name, kind in types.items()})
    if ours["conformer_id"].isna().all():  # fragment bags
        ours = ours.drop(columns="conformer_id")
    ours = ours.set_axis(added_columns([id_name], [str(c) for c in ours.columns]), axis=1)
    out = pd.DataFrame({id_name: ids.take(positions).to_numpy()})
    return _with_columns(out, ours).astype({id_name: ids.dtype})


def picture_frame(model: QSARModel | str | os.PathLike, df: pd.DataFrame,
                  smiles_column: Hashable | None = None, fmt: str = "svg",
                  signed: bool | None = None, size: tuple[int, int] = (300, 225)) -> pd.DataFrame:
    """The input table with a ``picture`` column: each structure with its fragments coloured.

    Parameters
    ----------
    fmt : {"svg", "png"}
        SVG text (KNIME: "String to SVG") or PNG bytes.
    signed : bool, optional
        Colour by signed contribution (red raises, blue lowers) or by weight; default: signed
        where the model gives signed contributions.

    Returns
    -------
    DataFrame
        ``df`` plus ``picture``; missing where the molecule failed or cannot be drawn.
    """
    if fmt not in ("svg", "png"):
        raise ValueError(f"fmt must be 'svg' or 'png', got {fmt!r}")
    model, _ = _model_and_path(model)
    smiles = smiles_texts(df[find_smiles_column(df.columns, smiles_column)])
    pictures = [_picture(e, fmt, signed, size) for e in _explanations(model, smiles)]
    return _with_columns(df, pd.DataFrame({"picture": pd.Series(pictures, dtype=object)}))


def _picture(explanation, fmt: str, signed: bool | None, size: tuple[int, int]) -> str | bytes | None:
    if explanation.status != "ok":
        return None
    signed = explanation.has_signed if signed is None else signed
    try:
        return explanation.draw(signed=signed, fmt=fmt, size=size)
    except (ValueError, RuntimeError):  # a molecule RDKit cannot lay out
        return None

