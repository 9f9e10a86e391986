"""All 30 MoleculeACE sets: our models against a Tanimoto SVR and a random forest on ECFP.

Each set on its own train/test split (MoleculeACE's). Baselines on ECFP4 (radius 2, 2048 bits):
an SVR with a Tanimoto kernel, C chosen by shuffled 5-fold cross-validation from 0.1-100 on the
training part, and a random forest of 500 trees. Candidates are whole QSARModels fitted on the
SMILES, so their fit seconds include bagging the molecules. Reported per set and candidate: test
RMSE, R², RMSE on MoleculeACE's activity-cliff molecules (``cliff_mol == 1``), fit+predict
seconds, and the share of test predictions outside the training label range. Summary: wins
against the SVR out of the sets run, mean RMSE, mean cliff RMSE, total seconds and the ratio to
the SVR's.

Run: python benchmarks/moleculeace.py [--quick] [--sets ...] [--candidates ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import RESULTS, save_results
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.svm import SVR

from milearn_core import AdditiveRegressor, ConsensusRegressor
from milearn_core.estimators.kernels import BagKernelRegressor, minmax_kernel
from qsarmil.data import list_datasets, load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import REGRESSION_FRAGMENT_DESCRIPTORS, QSARModel

QUICK_SETS = ["CHEMBL2835_Ki", "CHEMBL2047_EC50", "CHEMBL1871_Ki", "CHEMBL4616_EC50", "CHEMBL4203_Ki"]
SVR_C = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]


def _quiet(**params) -> MoleculeBagger:
    return MoleculeBagger(progress=False, **params)


# Candidates: name -> a fresh, unfitted QSARModel.
CANDIDATES = {
    # QSARModel() as a user gets it: BagKernelRegressor on in-parent Morgan (every atom's
    # environments) + atom-pair counts, fitted from the molecules' summed bags.
    "default": lambda: QSARModel(bagger=_quiet()),
    # The same with RDKit's usual Morgan counts, which drop duplicate environments: its summed
    # bags need the BRICS cuts (the recipe before morgan_atoms).
    "kernel_parent": lambda: QSARModel(bagger=_quiet(descriptors=("morgan_parent", "atompair_parent")),
                                       estimator=BagKernelRegressor()),
    # The former default's model (ridge on summed in-parent Morgan counts), its penalty chosen by
    # leave-one-out instead of 5-fold CV (AdditiveRegressor's 56 sparse fits took 1053 s here).
    "additive": lambda: QSARModel(bagger=_quiet(descriptors="morgan_parent"),
                                  estimator=BagKernelRegressor(kernels=("linear",))),
    "kernel_morgan": lambda: QSARModel(bagger=_quiet(descriptors="morgan_atoms"),
                                       estimator=BagKernelRegressor()),
    # Same-bag consensus: MinMax kernel model and the additive model, averaged.
    "consensus": lambda: QSARModel(
        bagger=_quiet(descriptors=REGRESSION_FRAGMENT_DESCRIPTORS),
        estimator=ConsensusRegressor([("minmax", BagKernelRegressor(kernels=("minmax",))),
                                      ("additive", BagKernelRegressor(kernels=("linear",)))])),
    "additive_cv": lambda: QSARModel(bagger=_quiet(descriptors="morgan_parent"),
                                     estimator=AdditiveRegressor()),
}
DEFAULT_CANDIDATES = ["default", "kernel_parent", "additive", "kernel_morgan", "consensus"]


def ecfp(smiles) -> np.ndarray:
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return np.array([gen.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in smiles], dtype=np.float64)


def tanimoto_svr(train_smiles, y, test_smiles) -> np.ndarray:
    """The baseline: SVR on a Tanimoto kernel (= MinMax on bits) over ECFP4, C by 5-fold CV."""
    Xtr, Xte = ecfp(train_smiles), ecfp(test_smiles)
    search = GridSearchCV(SVR(kernel="precomputed"), {"C": SVR_C}, scoring="neg_mean_squared_error",
                          cv=KFold(5, shuffle=True, random_state=0))
    search.fit(minmax_kernel(Xtr), y)
    return search.predict(minmax_kernel(Xte, Xtr))


def random_forest(train_smiles, y, test_smiles) -> np.ndarray:
    forest = RandomForestRegressor(500, n_jobs=2, random_state=0)
    return forest.fit(ecfp(train_smiles), y).predict(ecfp(test_smiles))


def _scores(y, pred, cliff, y_train, seconds) -> dict:
    pred = np.where(np.isnan(pred), float(np.mean(y_train)), pred)  # failed rows: the mean
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    outside = (pred < y_train.min()) | (pred > y_train.max())
    return {"rmse": rmse, "r2": float(r2_score(y, pred)),
            "cliff_rmse": float(np.sqrt(np.mean((pred[cliff] - y[cliff]) ** 2))),
            "seconds": round(seconds, 2), "outside_train_range": float(outside.mean())}


def run_set(name: str, candidates: list[str], forest: bool = True) -> dict:
    data = load_dataset(name)
    train, test = data[data.split == "train"], data[data.split == "test"]
    y_train, y_test = train.target.to_numpy(), test.target.to_numpy()
    cliff = test.cliff_mol.to_numpy() == 1
    out = {"train": len(train), "test": len(test), "test_cliff": int(cliff.sum()), "scores": {}}
    runs = {"svr_tanimoto": lambda: tanimoto_svr(train.smiles, y_train, test.smiles)}
    if forest:
        runs["rf_ecfp"] = lambda: random_forest(train.smiles, y_train, test.smiles)
    for label in candidates:
        runs[label] = lambda label=label: (CANDIDATES[label]().fit(train.smiles, y_train)
                                           .predict(test.smiles).astype(float))
    for label, run in runs.items():
        start = time.perf_counter()
        pred = run()
        out["scores"][label] = _scores(y_test, pred, cliff, y_train, time.perf_counter() - start)
    return out


def summary(per_set: dict) -> dict:
    labels = next(iter(per_set.values()))["scores"]
    svr = np.array([res["scores"]["svr_tanimoto"]["rmse"] for res in per_set.values()])
    svr_seconds = sum(res["scores"]["svr_tanimoto"]["seconds"] for res in per_set.values())
    out = {}
    for label in labels:
        rows = [res["scores"][label] for res in per_set.values()]
        rmse = np.array([r["rmse"] for r in rows])
        seconds = sum(r["seconds"] for r in rows)
        out[label] = {"wins_vs_svr": int((rmse < svr).sum()), "sets": len(rows),
                      "mean_rmse": float(rmse.mean()),
                      "mean_cliff_rmse": float(np.mean([r["cliff_rmse"] for r in rows])),
                      "mean_r2": float(np.mean([r["r2"] for r in rows])),
                      "total_seconds": round(seconds, 1), "seconds_vs_svr": round(seconds / svr_seconds, 2)}
    return out


LABELS = {"svr_tanimoto": "SVR, Tanimoto kernel on ECFP4 (baseline)", "rf_ecfp": "random forest on ECFP4",
          "default": "**`QSARModel()` default** (MinMax kernel on fragment bags)",
          "kernel_parent": "the same on `morgan_parent` (RDKit's duplicates dropped)",
          "additive": "additive model (former default)", "kernel_morgan": "MinMax kernel, Morgan only",
          "consensus": "consensus: MinMax + additive", "additive_cv": "AdditiveRegressor, 5-fold CV"}


def markdown(table: dict) -> str:
    """The summary as a Markdown table (the README's MoleculeACE table)."""
    lines = ["| model | wins vs SVR | mean RMSE | mean cliff RMSE | mean R² | seconds (x SVR) |",
             "|---|---|---|---|---|---|"]
    for label, row in table.items():
        lines.append(f"| {LABELS.get(label, label)} | {row['wins_vs_svr']}/{row['sets']} | "
                     f"{row['mean_rmse']:.3f} | {row['mean_cliff_rmse']:.3f} | {row['mean_r2']:.3f} | "
                     f"{row['total_seconds']:.0f} ({row['seconds_vs_svr']:.1f}x) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"five sets only: {QUICK_SETS}")
    parser.add_argument("--sets", nargs="*", help="MoleculeACE sets to run (default: all 30)")
    parser.add_argument("--candidates", nargs="*", default=DEFAULT_CANDIDATES, choices=list(CANDIDATES))
    parser.add_argument("--no-forest", action="store_true", help="skip the random forest (development)")
    parser.add_argument("--name", default="moleculeace", help="results file name (benchmarks/results)")
    args = parser.parse_args()
    sets = args.sets or (QUICK_SETS if args.quick else [n for n in list_datasets() if n.startswith("CHEMBL")])
    per_set = {}
    for name in sets:
        per_set[name] = res = run_set(name, args.candidates, forest=not args.no_forest)
        line = "  ".join(f"{k} {v['rmse']:.3f}/{v['cliff_rmse']:.3f} ({v['seconds']:.0f}s)"
                         for k, v in res["scores"].items())
        print(f"{name} ({res['train']}/{res['test']}): {line}", flush=True)
    table = summary(per_set)
    for label, row in table.items():
        print(f"{label:>18}: wins {row['wins_vs_svr']}/{row['sets']}  mean RMSE {row['mean_rmse']:.4f}  "
              f"cliff {row['mean_cliff_rmse']:.4f}  R² {row['mean_r2']:.3f}  "
              f"{row['total_seconds']:.0f} s ({row['seconds_vs_svr']}x SVR)", flush=True)
    save_results(args.name, {"protocol": __doc__.split("\n\n")[1], "summary": table, "sets": per_set})
    (RESULTS / f"{args.name}.md").write_text(markdown(table))


if __name__ == "__main__":
    main()
