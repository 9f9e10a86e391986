"""Command line: ``qsarmil train`` and ``qsarmil predict``."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from sklearn.metrics import mean_squared_error, r2_score

from milearn_core.persist import atomic_path

from .data import list_datasets, load_dataset
from .featurize import MoleculeBagger
from .model import QSARModel, default_estimator


def _read_table(path: str, smiles_column: str) -> pd.DataFrame:
    table = pd.read_excel(path) if path.endswith((".xlsx", ".xls")) else pd.read_csv(path)
    if smiles_column not in table.columns:
        raise SystemExit(f"{path}: no column {smiles_column!r} (columns: {list(table.columns)})")
    return table


def _write_atomically(table: pd.DataFrame, path: str) -> None:
    """Write CSV/XLSX to a temp file beside ``path``, then rename: never a half-written file."""
    with atomic_path(path) as tmp:
        if tmp.suffix in (".xlsx", ".xls"):
            table.to_excel(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)


def train(args) -> None:
    if args.dataset:
        data = load_dataset(args.dataset)
        train_rows = data[data.split == "train"] if "split" in data else data
        test_rows = data[data.split == "test"] if "split" in data else data.iloc[:0]
        smiles_col, target_col = "smiles", "target"
    else:
        data = _read_table(args.input, args.smiles_column)
        if args.target_column not in data.columns:
            raise SystemExit(f"{args.input}: no column {args.target_column!r}")
        train_rows, test_rows = data, data.iloc[:0]
        smiles_col, target_col = args.smiles_column, args.target_column
    bagger = MoleculeBagger(bag_type=args.bag_type, n_jobs=args.n_jobs)
    # The seed of the network, or of the additive model's CV-fold shuffling.
    estimator = default_estimator("regression", args.bag_type).set_params(random_state=args.seed)
    model = QSARModel(bagger=bagger, estimator=estimator)
    model.fit(train_rows[smiles_col], train_rows[target_col])
    print(f"trained on {len(train_rows) - len(model.training_failures_)} molecules "
          f"({len(model.training_failures_)} could not be bagged)")
    if len(test_rows):
        pred = model.predict(test_rows[smiles_col]).astype(float)
        ok = ~np.isnan(pred)
        rmse = np.sqrt(mean_squared_error(test_rows[target_col][ok], pred[ok]))
        print(f"test set: {ok.sum()} molecules, RMSE {rmse:.3f}, "
              f"R² {r2_score(test_rows[target_col][ok], pred[ok]):.3f}")
    model.save(args.out)
    print(f"model saved to {args.out}")


def predict(args) -> None:
    table = _read_table(args.input, args.smiles_column)
    model = QSARModel.load(args.model)
    result = model.predict_table(table[args.smiles_column].astype(str).where(
        table[args.smiles_column].notna(), ""))
    out = table.copy()
    out["prediction"], out["status"], out["error"] = (result.prediction.values, result.status.values,
                                                      result.error.values)
    _write_atomically(out, args.output)
    failed = int((out.status == "failed").sum())
    print(f"wrote {len(out)} rows to {args.output} ({failed} failed; see the 'error' column)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="qsarmil", description="Multi-instance QSAR models.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a QSARModel and save it to a folder")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=list_datasets(), help="a bundled data set")
    src.add_argument("--input", help="CSV or XLSX with SMILES and target columns")
    t.add_argument("--smiles-column", default="smiles")
    t.add_argument("--target-column", default="target")
    t.add_argument("--bag-type", default="brics", choices=["brics", "recap", "conformers"])
    t.add_argument("--n-jobs", type=int, default=1)
    t.add_argument("--seed", type=int, default=0, help="random seed (same seed, same model)")
    t.add_argument("--out", required=True, help="folder to save the model in")
    t.set_defaults(func=train)
    p = sub.add_parser("predict", help="score a CSV/XLSX of SMILES; every row comes back")
    p.add_argument("model", help="folder written by 'qsarmil train'")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--smiles-column", default="smiles")
    p.set_defaults(func=predict)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
