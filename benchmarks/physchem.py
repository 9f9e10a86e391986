"""Physchem: the default QSARModel, the physchem recipe and chemprop on solubility and FreeSolv.

Each bundled set on its own train/test split (qsarmil.data.load_dataset). Three models fitted in
the same run on the training molecules only and scored on the test molecules: (a) the default
``QSARModel()`` (kernel ridge on summed in-parent Morgan + atom-pair counts, MinMax or linear
kernel by exact leave-one-out error); (b) the physchem recipe
``qsarmil.recipes.physchem_model()`` (the same counts plus atom-additive Crippen logP/MR, TPSA
and Labute ASA; MinMax, linear or their sum, chosen by exact leave-one-out error on the training
molecules); (c) chemprop 2.3.1 through its CLI with its defaults on the CPU: ``chemprop train``
given the training molecules (which it splits into its own training and validation part for
early stopping) and the test molecules as its test file (only scored, never used for a choice;
``--split-sizes 0.9 0.1 0``, which a separate test file requires, and ``--pytorch-seed 0``; all
else default), then ``chemprop predict`` on the test molecules. Test R², RMSE and MAE; fit
seconds are the wall time of ``QSARModel.fit`` (bagging included) or of the ``chemprop train``
command. Chemprop is a benchmark-only extra (``pip install .[bench]``, or a separate environment
whose ``chemprop`` command ``--chemprop`` names; by default the PATH, then
``.venv-bench/bin/chemprop``); without it the run says so and skips it.

Run: python benchmarks/physchem.py [--sets solubility freesolv] [--chemprop PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, save_results
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from qsarmil.data import load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel
from qsarmil.recipes import physchem_model

SETS = ("solubility", "freesolv")
LABELS = {"default": "QSARModel() (default)", "physchem": "physchem_model()", "chemprop": "chemprop 2.3.1"}
CHEMPROP_VERSION = "2.3.1"
_BENCH_VENV = Path(__file__).resolve().parents[1] / ".venv-bench" / "bin" / "chemprop"

CANDIDATES = {
    "default": lambda: QSARModel(bagger=MoleculeBagger(progress=False)),
    "physchem": lambda: physchem_model(bagger=MoleculeBagger(progress=False)),
}


def _scores(y: np.ndarray, p: np.ndarray, seconds: float) -> dict:
    return {"r2": float(r2_score(y, p)), "rmse": float(mean_squared_error(y, p) ** 0.5),
            "mae": float(mean_absolute_error(y, p)), "fit_seconds": round(seconds, 1)}


def fit_ours(label: str, train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Fit one QSARModel candidate on the training rows; its test scores and choices."""
    model = CANDIDATES[label]()
    start = time.perf_counter()
    model.fit(train.smiles.tolist(), train.target.to_numpy())
    seconds = time.perf_counter() - start
    p = np.asarray(model.predict(test.smiles.tolist()), dtype=float)
    est = model.estimator_
    return {**_scores(test.target.to_numpy(), p, seconds), "kernel": est.kernel_,
            "alpha": est.alpha_, "loo_mse": {k: round(v, 4) for k, v in est.loo_errors_.items()}}


def find_chemprop(given: str | None) -> str | None:
    """The ``chemprop`` command to run: ``given``, else on the PATH, else .venv-bench's."""
    if given:
        return given
    return shutil.which("chemprop") or (str(_BENCH_VENV) if _BENCH_VENV.is_file() else None)


def chemprop_version(command: str) -> str | None:
    """The chemprop version installed beside ``command`` (None where it cannot be told)."""
    python = Path(command).with_name("python")
    if not python.is_file():
        return None
    done = subprocess.run([str(python), "-c", "import chemprop; print(chemprop.__version__)"],
                          capture_output=True, text=True)
    return done.stdout.strip() or None


def fit_chemprop(command: str, train: pd.DataFrame, test: pd.DataFrame, threads: int) -> dict:
    """Train chemprop with its defaults on the CPU, predict the test rows, score them."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train[["smiles", "target"]].to_csv(folder / "train.csv", index=False)
        test[["smiles", "target"]].to_csv(folder / "test.csv", index=False)
        common = ["-s", "smiles", "--accelerator", "cpu", "-n", "0"]
        start = time.perf_counter()
        _run([command, "train", "-i", str(folder / "train.csv"), str(folder / "test.csv"),
              "--target-columns", "target", "--task-type", "regression",
              "--split-sizes", "0.9", "0.1", "0.0", "--pytorch-seed", "0",
              "-o", str(folder / "out"), *common], env)
        seconds = time.perf_counter() - start
        model = sorted((folder / "out").rglob("best*.pt"))[0]
        _run([command, "predict", "-i", str(folder / "test.csv"), "--model-paths", str(model),
              "-o", str(folder / "preds.csv"), *common], env)
        preds = pd.read_csv(folder / "preds.csv")
    column = [c for c in preds.columns if c not in ("smiles",)][-1]
    return _scores(test.target.to_numpy(), preds[column].to_numpy(dtype=float), seconds)


def _run(argv: list[str], env: dict) -> None:
    done = subprocess.run(["nice", "-n", "10", *argv], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv[:2])} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def markdown(sets: dict) -> str:
    """The results table: one row per data set and model."""
    lines = ["| data set | model | test R² | RMSE | MAE | fit seconds |", "|---|---|---|---|---|---|"]
    for name, res in sets.items():
        for label, row in res["models"].items():
            if "skipped" in row:
                lines.append(f"| {name} | {LABELS.get(label, label)} | skipped: {row['skipped']} | | | |")
                continue
            lines.append(f"| {name} | {LABELS.get(label, label)} | {row['r2']:.3f} | {row['rmse']:.3f} | "
                         f"{row['mae']:.3f} | {row['fit_seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=SETS)
    parser.add_argument("--chemprop", help="the chemprop command (default: PATH, then .venv-bench)")
    parser.add_argument("--threads", type=int, default=2, help="chemprop's torch threads")
    parser.add_argument("--name", default="physchem", help="results file name")
    args = parser.parse_args()
    command = find_chemprop(args.chemprop)
    version = chemprop_version(command) if command else None
    if command is None:
        print("chemprop is not installed (pip install '.[bench]', or give --chemprop PATH): "
              "skipping it", flush=True)
    elif version not in (None, CHEMPROP_VERSION):
        print(f"note: chemprop {version} found, the protocol names {CHEMPROP_VERSION}", flush=True)
    per_set = {}
    for name in args.sets:
        frame = load_dataset(name)
        train, test = frame[frame.split == "train"], frame[frame.split == "test"]
        models = {}
        for label in [*CANDIDATES, "chemprop"]:
            if label in CANDIDATES:
                models[label] = row = fit_ours(label, train, test)
            else:
                models[label] = row = (fit_chemprop(command, train, test, args.threads) if command
                                       else {"skipped": "chemprop not installed"})
            line = row.get("skipped") or (f"R² {row['r2']:.4f}  RMSE {row['rmse']:.4f}  "
                                          f"MAE {row['mae']:.4f}  fit {row['fit_seconds']:.1f} s"
                                          + (f"  kernel {row['kernel']}" if "kernel" in row else ""))
            print(f"{name:>10} {label:>9}: {line}", flush=True)
        per_set[name] = {"train": len(train), "test": len(test), "models": models}
    results = {"protocol": __doc__.split("\n\n")[1], "chemprop_version": version, "sets": per_set}
    save_results(args.name, results)
    (RESULTS / f"{args.name}.md").write_text(markdown(per_set))


if __name__ == "__main__":
    main()
