"""Classification on all 30 MoleculeACE sets: our default against a Tanimoto SVC and a forest.

Each set on MoleculeACE's own train/test split, binarised two ways: (a) active = above the
training set's median target; (b) active = pK >= 6.5 (bundled target >= -2.5, the targets being
log10 of the activity in molar units relative to 1 nM, see datasets/README.md), scored only where
the minority class holds at least 10 % of the training set. Baselines on ECFP4 (radius 2, 2048
bits): an SVC with a Tanimoto kernel (C from 0.1-100 by stratified 5-fold CV on ROC AUC, Platt
probabilities as scikit-learn's ``probability=True`` makes them) and a random forest of 500
trees (2 processes). Candidates are whole QSARModels fitted on the SMILES, so their seconds
include bagging. Per set and model: ROC AUC, PR AUC (average precision), balanced accuracy,
Brier score, expected calibration error (10 equal-width bins) and fit+predict seconds. Plus the
structural-alert task (``qsarmil.alerts``): accuracy and KID of the default classifier. The
attention network (the former default) runs on the first ``--network-sets`` sets only; each
model's summary row is over the sets it ran on, against the SVC on those sets.

Run: python benchmarks/classification.py [--quick] [--sets ...] [--candidates ...]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import RESULTS, save_results
from moleculeace import QUICK_SETS, ecfp
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import average_precision_score, balanced_accuracy_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.svm import SVC

from milearn_core import BagKernelClassifier, MILClassifier
from milearn_core.estimators.kernels import minmax_kernel
from qsarmil.data import list_datasets, load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel

SVC_C = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
POTENCY_CUT = -2.5  # pK 6.5 in the bundled units (pK - 9)
MIN_MINORITY = 0.10


def _quiet(**params) -> MoleculeBagger:
    return MoleculeBagger(progress=False, **params)


CANDIDATES = {
    # QSARModel(task="classification") as a user gets it: BagKernelClassifier on the regression
    # default's bags (in-parent Morgan + atom-pair counts), fitted from summed bags.
    "default": lambda: QSARModel(bagger=_quiet(), task="classification"),
    "kernel_minmax": lambda: QSARModel(bagger=_quiet(descriptors=("morgan_atoms", "atompair_parent")),
                                       estimator=BagKernelClassifier(kernels=("minmax",))),
    # The former default: an attention network on fragment bags.
    "attention": lambda: QSARModel(bagger=_quiet(), estimator=MILClassifier(pooling="attention",
                                                                            random_state=0)),
}
DEFAULT_CANDIDATES = ["default", "attention"]


def calibration_error(y, p, bins: int = 10) -> float:
    """Expected calibration error of the positive-class probabilities (equal-width bins)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return float(sum(abs(p[which == b].mean() - y[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))


def tanimoto_svc(train_smiles, y, test_smiles) -> np.ndarray:
    Xtr, Xte = ecfp(train_smiles), ecfp(test_smiles)
    search = GridSearchCV(SVC(kernel="precomputed", probability=True, random_state=0), {"C": SVC_C},
                          scoring="roc_auc", cv=StratifiedKFold(5, shuffle=True, random_state=0))
    search.fit(minmax_kernel(Xtr), y)
    return search.predict_proba(minmax_kernel(Xte, Xtr))[:, 1]


def random_forest(train_smiles, y, test_smiles) -> np.ndarray:
    forest = RandomForestClassifier(500, n_jobs=2, random_state=0)
    return forest.fit(ecfp(train_smiles), y).predict_proba(ecfp(test_smiles))[:, 1]


def _scores(y, p, seconds) -> dict:
    p = np.where(np.isnan(p), 0.5, p)  # a failed row: no information
    return {"roc_auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p)),
            "balanced_accuracy": float(balanced_accuracy_score(y, p >= 0.5)),
            "brier": float(brier_score_loss(y, p)), "ece": calibration_error(y, p),
            "seconds": round(seconds, 2)}


def _positive_proba(model: QSARModel, smiles) -> np.ndarray:
    table = model.predict_table(smiles)
    return table["proba_1"].to_numpy(dtype=float)


def run_split(train, test, y_train, y_test, candidates: list[str], forest: bool) -> dict:
    warnings.filterwarnings("ignore", message="The `probability` parameter", category=FutureWarning)
    runs = {"svc_tanimoto": lambda: tanimoto_svc(train.smiles, y_train, test.smiles)}
    if forest:
        runs["rf_ecfp"] = lambda: random_forest(train.smiles, y_train, test.smiles)
    for label in candidates:
        runs[label] = lambda label=label: _positive_proba(
            CANDIDATES[label]().fit(train.smiles, y_train), test.smiles)
    out = {"train": len(train), "test": len(test), "train_active": float(y_train.mean()), "scores": {}}
    for label, run in runs.items():
        start = time.perf_counter()
        p = run()
        out["scores"][label] = _scores(y_test, p, time.perf_counter() - start)
    return out


def run_set(name: str, candidates: list[str], forest: bool, network_sets: set[str]) -> dict:
    data = load_dataset(name)
    if name not in network_sets:
        candidates = [c for c in candidates if c != "attention"]
    train, test = data[data.split == "train"], data[data.split == "test"]
    out = {}
    cuts = {"median": float(train.target.median()), "potency": POTENCY_CUT}
    for kind, cut in cuts.items():
        y_train = (train.target.to_numpy() > cut if kind == "median"
                   else train.target.to_numpy() >= cut).astype(int)
        y_test = (test.target.to_numpy() > cut if kind == "median"
                  else test.target.to_numpy() >= cut).astype(int)
        minority = min(y_train.mean(), 1 - y_train.mean())
        if minority < MIN_MINORITY or len(set(y_test)) < 2:
            out[kind] = {"skipped": f"minority class {minority:.1%} of the training set"}
            continue
        out[kind] = run_split(train, test, y_train, y_test, candidates, forest)
    return out


def summary(per_set: dict, kind: str) -> dict:
    runs = {n: r[kind] for n, r in per_set.items() if "scores" in r[kind]}
    if not runs:
        return {}
    labels = list(dict.fromkeys(label for r in runs.values() for label in r["scores"]))
    svc = {n: r["scores"]["svc_tanimoto"] for n, r in runs.items()}
    out = {}
    for label in labels:  # each over the sets it ran on (the network: the first few only)
        rows = {n: r["scores"][label] for n, r in runs.items() if label in r["scores"]}
        seconds = sum(r["seconds"] for r in rows.values())
        svc_seconds = sum(svc[n]["seconds"] for n in rows)
        out[label] = {
            "sets": len(rows),
            "auc_wins_vs_svc": int(sum(rows[n]["roc_auc"] > svc[n]["roc_auc"] for n in rows)),
            **{f"mean_{m}": float(np.mean([r[m] for r in rows.values()]))
               for m in ("roc_auc", "pr_auc", "balanced_accuracy", "brier", "ece")},
            "total_seconds": round(seconds, 1), "seconds_vs_svc": round(seconds / svc_seconds, 2)}
    return out


def alert_task(pool_size: int) -> dict:
    """The structural-alert task with the default classifier (see benchmarks/search.py)."""
    from search import alerts

    return alerts(pool_size)


LABELS = {"svc_tanimoto": "SVC, Tanimoto kernel on ECFP4 (baseline)",
          "rf_ecfp": "random forest on ECFP4",
          "default": "**`QSARModel(task=\"classification\")` default** (kernel classifier)",
          "kernel_minmax": "kernel classifier, MinMax only",
          "attention": "attention network (former default)"}


def markdown(summaries: dict) -> str:
    lines = []
    for kind, table in summaries.items():
        if not table:
            continue
        lines += [f"**{kind}**", "", "| model | AUC wins vs SVC | ROC AUC | PR AUC | balanced acc. | Brier | "
                  "ECE | seconds (x SVC) |", "|---|---|---|---|---|---|---|---|"]
        for label, row in table.items():
            lines.append(f"| {LABELS.get(label, label)} | {row['auc_wins_vs_svc']}/{row['sets']} | "
                         f"{row['mean_roc_auc']:.3f} | {row['mean_pr_auc']:.3f} | "
                         f"{row['mean_balanced_accuracy']:.3f} | {row['mean_brier']:.3f} | "
                         f"{row['mean_ece']:.3f} | "
                         f"{row['total_seconds']:.0f} ({row['seconds_vs_svc']:.1f}x) |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"five sets only: {QUICK_SETS}")
    parser.add_argument("--sets", nargs="*", help="MoleculeACE sets (default: all 30)")
    parser.add_argument("--candidates", nargs="*", default=DEFAULT_CANDIDATES, choices=list(CANDIDATES))
    parser.add_argument("--no-forest", action="store_true", help="skip the random forest")
    parser.add_argument("--network-sets", type=int, default=len(QUICK_SETS),
                        help="run the attention network on this many sets only (the quick sets "
                        "first; it takes 1-3 min per set here); -1: every set")
    parser.add_argument("--alert-pool", type=int, default=20000,
                        help="molecules scanned for the alert task (0: skip it)")
    parser.add_argument("--name", default="classification", help="results file name")
    args = parser.parse_args()
    sets = args.sets or (QUICK_SETS if args.quick else [n for n in list_datasets() if n.startswith("CHEMBL")])
    order = [n for n in QUICK_SETS if n in sets] + [n for n in sets if n not in QUICK_SETS]
    network_sets = set(order if args.network_sets < 0 else order[:args.network_sets])
    per_set = {}
    for name in sets:
        per_set[name] = res = run_set(name, args.candidates, not args.no_forest, network_sets)
        for kind, r in res.items():
            line = r.get("skipped") or "  ".join(
                f"{k} {v['roc_auc']:.3f}/{v['ece']:.3f} ({v['seconds']:.0f}s)"
                for k, v in r["scores"].items())
            print(f"{name} {kind}: {line}", flush=True)
    summaries = {kind: summary(per_set, kind) for kind in ("median", "potency")}
    for kind, table in summaries.items():
        for label, row in table.items():
            print(f"{kind:>8} {label:>14}: AUC wins {row['auc_wins_vs_svc']}/{row['sets']}  "
                  f"AUC {row['mean_roc_auc']:.4f}  PR {row['mean_pr_auc']:.4f}  "
                  f"bacc {row['mean_balanced_accuracy']:.3f}  ECE {row['mean_ece']:.3f}  "
                  f"{row['total_seconds']:.0f} s ({row['seconds_vs_svc']}x SVC)", flush=True)
    results = {"protocol": __doc__.split("\n\n")[1], "summary": summaries, "sets": per_set}
    if args.alert_pool:
        results["alerts"] = alert_task(args.alert_pool)
    save_results(args.name, results)
    (RESULTS / f"{args.name}.md").write_text(markdown(summaries))


if __name__ == "__main__":
    main()
