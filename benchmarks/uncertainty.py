"""How sure: prediction intervals and conformal class sets on every bundled regression set.

Each set on its own train/test split: the 30 MoleculeACE sets, solubility and FreeSolv. The
default ``QSARModel`` (kernel model, intervals from exact leave-one-out residuals normalised by
the nearest training molecules' errors, a quantile per third of the training set by nearest
similarity, :mod:`qsarmil.reliability`) next to MAPIE's CV+
(``CrossConformalRegressor``, method "plus", 5 shuffled folds) around the Tanimoto SVR on ECFP4
(C chosen by 5-fold CV on the training part, as in ``moleculeace.py``), the intervals a user
would build with the library they would reach for. Reported per set and level (80/90/95 %):
test coverage and mean width; at 90 %: Spearman(width, |error|), coverage and median width
inside vs outside the applicability domain (the model's ``in_domain``) and on MoleculeACE's
activity-cliff molecules. Fit-time overhead: CPU seconds spent calibrating the intervals
(``Reliability.fit``) over the CPU seconds of the rest of the fit. Classification: each
MoleculeACE set binarised at its training median, the default classifier's class-conditional
conformal sets at 90 %: coverage and mean set size.

Run: python benchmarks/uncertainty.py [--quick] [--sets ...] [--no-mapie]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import protocol, save_run
from moleculeace import QUICK_SETS, SVR_C, ecfp
from scipy.stats import spearmanr
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.svm import SVR

from milearn_core.estimators.kernels import minmax_kernel
from qsarmil.data import list_datasets, load_dataset
from qsarmil.model import QSARModel
from qsarmil.reliability import Reliability

LEVELS = (0.8, 0.9, 0.95)
MAIN = 0.9


def _tanimoto(A, B):
    return minmax_kernel(A, B)


def _interval_scores(y: np.ndarray, pred: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict:
    inside = (y >= low) & (y <= high)
    return {"coverage": float(inside.mean()), "width": float(np.mean(high - low))}


def _timed_fit(model: QSARModel, smiles, y) -> tuple[float, float]:
    """CPU seconds of the whole fit, and of the intervals' calibration within it."""
    spent = []
    calibrate = Reliability.fit

    def timed(self, *args, **kwargs):
        start = time.process_time()
        try:
            return calibrate(self, *args, **kwargs)
        finally:
            spent.append(time.process_time() - start)

    Reliability.fit = timed
    try:
        start = time.process_time()
        model.fit(smiles, y)
        return time.process_time() - start, sum(spent)
    finally:
        Reliability.fit = calibrate


def ours(train, test) -> dict:
    y_train, y_test = train.target.to_numpy(), test.target.to_numpy()
    model = QSARModel()
    total, calibration = _timed_fit(model, train.smiles, y_train)
    out = {"fit_cpu_seconds": round(total, 2), "calibration_cpu_seconds": round(calibration, 3),
           "overhead": round(calibration / (total - calibration), 3)}
    for level in LEVELS:
        table = model.predict_table(test.smiles, level=level)
        pred = table.prediction.to_numpy(float)
        low, high = table.prediction_lower.to_numpy(float), table.prediction_upper.to_numpy(float)
        out[f"{level:.2f}"] = _interval_scores(y_test, pred, low, high)
        if level == MAIN:
            width, error = high - low, np.abs(y_test - pred)
            out["rmse"] = float(np.sqrt(np.mean(error ** 2)))
            out["spearman"] = float(spearmanr(width, error).correlation)
            inside = table.in_domain.to_numpy(dtype=bool)
            covered = (y_test >= low) & (y_test <= high)
            for name, rows in (("in_domain", inside), ("out_domain", ~inside)):
                out[name] = {"n": int(rows.sum()),
                             "coverage": float(covered[rows].mean()) if rows.any() else None,
                             "median_width": float(np.median(width[rows])) if rows.any() else None}
            if "cliff_mol" in test:
                cliff = test.cliff_mol.to_numpy() == 1
                out["cliff"] = {"n": int(cliff.sum()),
                                "coverage": float(covered[cliff].mean()) if cliff.any() else None,
                                "width": float(width[cliff].mean()) if cliff.any() else None}
    return out


def mapie_svr(train, test) -> dict:
    from mapie.regression import CrossConformalRegressor

    y_train, y_test = train.target.to_numpy(), test.target.to_numpy()
    Xtr, Xte = ecfp(train.smiles), ecfp(test.smiles)
    start = time.process_time()
    search = GridSearchCV(SVR(kernel="precomputed"), {"C": SVR_C}, scoring="neg_mean_squared_error",
                          cv=KFold(5, shuffle=True, random_state=0)).fit(minmax_kernel(Xtr), y_train)
    mapie = CrossConformalRegressor(SVR(kernel=_tanimoto, C=search.best_params_["C"]),
                                    confidence_level=list(LEVELS), method="plus",
                                    cv=KFold(5, shuffle=True, random_state=0))
    mapie.fit_conformalize(Xtr, y_train)
    pred, bounds = mapie.predict_interval(Xte)
    out = {"fit_cpu_seconds": round(time.process_time() - start, 2),
           "rmse": float(np.sqrt(np.mean((pred - y_test) ** 2)))}
    for k, level in enumerate(LEVELS):
        low, high = bounds[:, 0, k], bounds[:, 1, k]
        out[f"{level:.2f}"] = _interval_scores(y_test, pred, low, high)
        if level == MAIN:
            out["spearman"] = float(spearmanr(high - low, np.abs(y_test - pred)).correlation)
    return out


def class_sets(train, test) -> dict:
    cut = float(np.median(train.target))
    y_train = np.where(train.target > cut, "active", "inactive")
    y_test = np.where(test.target > cut, "active", "inactive")
    model = QSARModel(task="classification").fit(train.smiles, y_train)
    table = model.predict_table(test.smiles, level=MAIN)
    members = table.prediction_set.str.split("|")
    covered = np.array([label in m for label, m in zip(y_test, members)])
    return {"coverage": float(covered.mean()), "set_size": float(table.set_size.mean()),
            "accuracy": float((table.prediction.to_numpy() == y_test).mean())}


def run_set(name: str, mapie: bool) -> dict:
    data = load_dataset(name)
    train, test = data[data.split == "train"], data[data.split == "test"]
    start = time.perf_counter()
    row = {"n_train": len(train), "n_test": len(test), "ours": ours(train, test)}
    if mapie:
        row["mapie_cv_plus_svr"] = mapie_svr(train, test)
    if name.startswith("CHEMBL"):
        row["classification"] = class_sets(train, test)
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def summary(per_set: dict) -> dict:
    def mean(values) -> float | None:
        values = [v for v in values if v is not None and np.isfinite(v)]
        return round(float(np.mean(values)), 3) if values else None

    ours_rows = [r["ours"] for r in per_set.values()]
    out = {"sets": len(per_set), "ours": {}, "mapie_cv_plus_svr": {}}
    for level in LEVELS:
        key = f"{level:.2f}"
        out["ours"][key] = {"coverage": mean(r[key]["coverage"] for r in ours_rows),
                            "min_coverage": round(min(r[key]["coverage"] for r in ours_rows), 3),
                            "width": mean(r[key]["width"] for r in ours_rows)}
    out["ours"].update(
        spearman=mean(r["spearman"] for r in ours_rows),
        rmse=mean(r["rmse"] for r in ours_rows),
        overhead=mean(r["overhead"] for r in ours_rows),
        max_overhead=round(max(r["overhead"] for r in ours_rows), 3),
        in_domain_coverage=mean(r["in_domain"]["coverage"] for r in ours_rows),
        out_domain_coverage=mean(r["out_domain"]["coverage"] for r in ours_rows),
        out_in_width_ratio=mean(r["out_domain"]["median_width"] / r["in_domain"]["median_width"]
                                for r in ours_rows if r["out_domain"]["n"] and r["in_domain"]["n"]),
        cliff_coverage=mean(r["cliff"]["coverage"] for r in ours_rows if "cliff" in r),
        cliff_width=mean(r["cliff"]["width"] for r in ours_rows if "cliff" in r))
    mapie_rows = [r["mapie_cv_plus_svr"] for r in per_set.values() if "mapie_cv_plus_svr" in r]
    if mapie_rows:
        for level in LEVELS:
            key = f"{level:.2f}"
            out["mapie_cv_plus_svr"][key] = {
                "coverage": mean(r[key]["coverage"] for r in mapie_rows),
                "min_coverage": round(min(r[key]["coverage"] for r in mapie_rows), 3),
                "width": mean(r[key]["width"] for r in mapie_rows)}
        out["mapie_cv_plus_svr"].update(spearman=mean(r["spearman"] for r in mapie_rows),
                                        rmse=mean(r["rmse"] for r in mapie_rows))
        both = [n for n, r in per_set.items() if "mapie_cv_plus_svr" in r]
        out["width_ratio_90"] = mean(per_set[n]["ours"]["0.90"]["width"]
                                     / per_set[n]["mapie_cv_plus_svr"]["0.90"]["width"] for n in both)
    sets = [r["classification"] for r in per_set.values() if "classification" in r]
    if sets:
        out["classification"] = {"sets": len(sets), "coverage": mean(r["coverage"] for r in sets),
                                 "min_coverage": round(min(r["coverage"] for r in sets), 3),
                                 "set_size": mean(r["set_size"] for r in sets),
                                 "accuracy": mean(r["accuracy"] for r in sets)}
    o = out["ours"]
    out["targets"] = {
        "coverage_90_in_0.88_0.92": 0.88 <= o["0.90"]["coverage"] <= 0.92,
        "coverage_90_min_0.85": o["0.90"]["min_coverage"] >= 0.85,
        "width_le_0.95_mapie": out.get("width_ratio_90") is not None and out["width_ratio_90"] <= 0.95,
        "spearman_ge_0.25": o["spearman"] is not None and o["spearman"] >= 0.25,
        "out_in_width_ge_1.2": o["out_in_width_ratio"] is not None and o["out_in_width_ratio"] >= 1.2,
        "class_coverage_ge_0.88": bool(sets) and out["classification"]["coverage"] >= 0.88,
        "overhead_le_0.20": o["overhead"] is not None and o["overhead"] <= 0.20,
    }
    return out


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(results: dict) -> str:
    """The README / docs table, generated from the saved JSON."""
    s = results["summary"]
    o, m = s["ours"], s.get("mapie_cv_plus_svr", {})
    lines = [f"Over {s['sets']} sets (each on its own test split):", "",
             "| intervals | level | mean coverage | lowest coverage | mean width |",
             "|---|---|---|---|---|"]
    for level in LEVELS:
        key = f"{level:.2f}"
        lines.append(f"| ours (default model) | {level:.0%} | {_fmt(o[key]['coverage'])} | "
                     f"{_fmt(o[key]['min_coverage'])} | {_fmt(o[key]['width'])} |")
        if key in m:
            lines.append(f"| MAPIE CV+ around the Tanimoto SVR | {level:.0%} | {_fmt(m[key]['coverage'])} | "
                         f"{_fmt(m[key]['min_coverage'])} | {_fmt(m[key]['width'])} |")
    lines += ["",
              f"At 90 %: width {_fmt(s.get('width_ratio_90'), 2)}x MAPIE's (mean of per-set ratios); "
              f"Spearman(width, |error|) {_fmt(o['spearman'], 2)} (MAPIE: {_fmt(m.get('spearman'), 2)}); "
              f"coverage {_fmt(o['in_domain_coverage'], 2)} in domain, {_fmt(o['out_domain_coverage'], 2)} "
              f"outside, where intervals are {_fmt(o['out_in_width_ratio'], 2)}x wider (median); "
              f"activity-cliff molecules {_fmt(o['cliff_coverage'], 2)}. Fit-time overhead of the "
              f"intervals: {o['overhead']:.0%} mean, {o['max_overhead']:.0%} at most."]
    if "classification" in s:
        c = s["classification"]
        lines += ["", f"Classification ({c['sets']} MoleculeACE sets split at the training median), "
                      f"90 % conformal sets: coverage {_fmt(c['coverage'], 3)} (lowest "
                      f"{_fmt(c['min_coverage'], 3)}), mean set size {_fmt(c['set_size'], 2)}."]
    missed = [k for k, ok in s["targets"].items() if not ok]
    lines += ["", "Targets missed: " + (", ".join(missed) if missed else "none") + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 MoleculeACE sets and solubility")
    parser.add_argument("--sets", nargs="+")
    parser.add_argument("--no-mapie", action="store_true")
    args = parser.parse_args()
    moleculeace = [n for n in list_datasets() if n.startswith("CHEMBL")]
    names = args.sets or (QUICK_SETS + ["solubility"] if args.quick
                          else moleculeace + ["solubility", "freesolv"])
    per_set = {}
    for name in names:
        per_set[name] = run_set(name, not args.no_mapie)
        r = per_set[name]
        mapie = r.get("mapie_cv_plus_svr", {}).get("0.90", {})
        print(f"{name}: 90% coverage {r['ours']['0.90']['coverage']:.3f} width "
              f"{r['ours']['0.90']['width']:.2f} (MAPIE {mapie.get('coverage', float('nan')):.3f} / "
              f"{mapie.get('width', float('nan')):.2f}), spearman {r['ours']['spearman']:.2f}, "
              f"overhead {r['ours']['overhead']:.0%}, {r['seconds']} s", flush=True)
    results = {"protocol": protocol(__doc__), "sets": per_set, "summary": summary(per_set)}
    print(save_run("uncertainty", results, markdown, full=not (args.quick or args.sets)))


if __name__ == "__main__":
    main()
