"""Training sets of 2 000 to 200 000 molecules on one machine: fit time, peak memory, error.

Molecules: the seeded pool of :mod:`scale_data` (every distinct bundled molecule, then BRICS
recombinations of their fragments), shuffled with seed 0; the first 5 000 are the held-out
test set, training sets are the next n. Target: Crippen logP plus Gaussian noise (sd 0.3);
at 16 000 and 100 000 molecules also the fragment-additive target with an interaction term
(Crippen contributions plus 1.5 where an aromatic amine meets a carboxylic acid); at 100 000
the kernel classifier on logP above / below the training median.

Each fit runs in a fresh process: ``QSARModel(n_jobs=2)`` (default model: the bag-kernel
regressor, exact up to 8 000 molecules, on landmarks above; intervals and neighbours on), fit
wall seconds and the process's peak RSS (bagging workers are separate processes of ~0.2 GB
each, not counted). At 16 000 molecules the exact model (``exact_limit=None``) is fitted on
the same split for comparison. Scoring: the 100 000-molecule model, saved and loaded, scores
20 000 pool molecules in one process (``iter_predict``) and on two local processes
(``predict_chunks``), with peak RSS. Regression rows also give the held-out coverage and mean
width of the default 90 % intervals. Featurisation: 10 000 molecules bagged in-process and on
a two-worker Dask LocalCluster, compared bag for bag.

Run: python benchmarks/scale.py [--quick]   (--quick: 2 000-8 000 molecules only)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import protocol, save_run

SIZES = (2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 100_000, 200_000)
INTERACTION_SIZES = (16_000, 100_000)
CLASSIFICATION_SIZES = (100_000,)
EXACT_SIZES = (16_000,)
TEST_SIZE = 5_000
POOL = 205_000
SCORED = 20_000
FIGURE = Path(__file__).resolve().parent.parent / "docs" / "img" / "scale_curve.svg"


def split(n_train: int, target: str) -> tuple[list, np.ndarray, list, np.ndarray]:
    """Training and test molecules and targets for ``n_train`` molecules."""
    import scale_data

    pool = scale_data.cached_molecules(POOL)
    order = np.random.default_rng(0).permutation(len(pool))
    test = [pool[i] for i in order[:TEST_SIZE]]
    train = [pool[i] for i in order[TEST_SIZE:TEST_SIZE + n_train]]
    make = scale_data.logp_target if target == "logp" else scale_data.interaction_target
    return train, make(train), test, make(test)


def fit_child(n_train: int, target: str, exact: bool, save: str | None) -> dict:
    """One fit in this process: seconds, peak RSS, held-out RMSE and R²."""
    from sklearn.metrics import r2_score

    from milearn_core import BagKernelRegressor
    from qsarmil.model import QSARModel

    classes = target == "logp_class"
    train, y, test, y_test = split(n_train, "logp" if classes else target)
    if classes:  # above / below the training median
        y, y_test = np.where(y > np.median(y), "high", "low"), np.where(y_test > np.median(y), "high", "low")
    estimator = BagKernelRegressor(exact_limit=None) if exact else None
    start = time.perf_counter()
    model = QSARModel(estimator=estimator, n_jobs=2).fit(train, y)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    row = {"n": n_train, "target": target, "path": "exact" if model.estimator_.n_landmarks_ is None
           else "landmarks", "landmarks": model.estimator_.n_landmarks_,
           "kernel": model.estimator_.kernel_, "fit_s": round(seconds, 1),
           "peak_rss_gb": round(peak, 2)}
    if classes:
        from sklearn.metrics import roc_auc_score

        proba = model.predict_proba(test)[:, list(model.classes_).index("high")]
        row.update(accuracy=round(float(np.mean(model.predict(test) == y_test)), 4),
                   auc=round(float(roc_auc_score(y_test == "high", proba)), 4))
    else:
        table = model.predict_table(test)
        predicted = table.prediction.to_numpy()
        inside = (y_test >= table.prediction_lower) & (y_test <= table.prediction_upper)
        row.update(rmse=round(float(np.sqrt(np.mean((predicted - y_test) ** 2))), 4),
                   r2=round(float(r2_score(y_test, predicted)), 4),
                   coverage_90=round(float(inside.mean()), 3),
                   width_90=round(float((table.prediction_upper - table.prediction_lower).mean()), 3))
    if save:
        model.save(save)
    return row


def score_child(folder: str) -> dict:
    """Score pool molecules with a saved model: in one process and on two."""
    import scale_data

    from qsarmil.model import QSARModel
    from qsarmil.scale import predict_chunks

    pool = scale_data.cached_molecules(POOL)
    smiles = pool[-SCORED:]
    model = QSARModel.load(folder)
    start = time.perf_counter()
    rows = sum(len(t) for t in model.iter_predict(iter(smiles)))
    one = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    chunks = (smiles[lo:lo + 1000] for lo in range(0, len(smiles), 1000))
    start = time.perf_counter()
    rows_two = sum(len(t) for t in predict_chunks(None, chunks, n_jobs=2, model_path=folder))
    two = time.perf_counter() - start
    assert rows == rows_two == len(smiles)
    return {"molecules": rows, "one_process_mol_s": round(rows / one),
            "two_processes_mol_s": round(rows / two), "peak_rss_gb": round(peak, 2)}


def dask_child(n: int) -> dict:
    """Bag ``n`` molecules in-process and on a two-worker LocalCluster; same bags?"""
    from distributed import Client, LocalCluster

    from qsarmil.execution import bag_on_dask
    from qsarmil.featurize import MoleculeBagger
    from qsarmil.model import REGRESSION_FRAGMENT_DESCRIPTORS

    train, *_ = split(n, "logp")
    bagger = MoleculeBagger(descriptors=REGRESSION_FRAGMENT_DESCRIPTORS, progress=False)
    start = time.perf_counter()
    local = bagger.transform_summed(train)
    local_s = time.perf_counter() - start
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(lambda: None)  # workers up before the clock starts
        start = time.perf_counter()
        remote = bag_on_dask(bagger, train, True, client)
        dask_s = time.perf_counter() - start
    same = len(local) == len(remote) and all((a != b).nnz == 0 if hasattr(a, "nnz")
                                             else np.array_equal(a, b) for a, b in zip(local, remote))
    return {"molecules": n, "local_s": round(local_s, 1), "dask_2_workers_s": round(dask_s, 1),
            "speedup": round(local_s / dask_s, 2), "identical_bags": bool(same)}


def _in_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(results: dict) -> str:
    lines = ["| molecules | target | path | landmarks | fit s | peak RSS GB | test RMSE / accuracy "
             "| test R² / ROC AUC | 90 % interval coverage / mean width |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results["fits"]:
        first, second = (r["rmse"], r["r2"]) if "rmse" in r else (r["accuracy"], r["auc"])
        interval = f"{r['coverage_90']} / {r['width_90']}" if "coverage_90" in r else "-"
        lines.append(f"| {r['n']:,} | {r['target']} | {r['path']} | {r['landmarks'] or '-'} | "
                     f"{r['fit_s']} | {r['peak_rss_gb']} | {first} | {second} | {interval} |")
    s = results.get("scoring")
    if s:
        lines += ["", f"Scoring {s['molecules']:,} molecules with the 100 000-molecule model: "
                  f"{s['one_process_mol_s']} mol/s in one process, {s['two_processes_mol_s']} mol/s "
                  f"on two; peak RSS {s['peak_rss_gb']} GB."]
    d = results.get("dask")
    if d:
        lines += ["", f"Bagging {d['molecules']:,} molecules: {d['local_s']} s in-process, "
                  f"{d['dask_2_workers_s']} s on a 2-worker Dask LocalCluster "
                  f"(identical bags: {d['identical_bags']})."]
    for name, ratio in results.get("exact_ratio", {}).items():
        lines += ["", f"At 16 000 molecules ({name}), landmark RMSE / exact RMSE = {ratio}."]
    return "\n".join(lines) + "\n"


def _panel(points: dict[str, list[tuple[float, float]]], x0: float, label: str) -> list[str]:
    """One SVG panel, log-scaled x (training molecules), linear y, a line per series."""
    width, height, left, top = 300, 200, 50, 30
    xs = [np.log10(x) for series in points.values() for x, _ in series]
    ys = [y for series in points.values() for _, y in series]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    y_lo, y_hi = y_lo - 0.08 * (y_hi - y_lo), y_hi + 0.08 * (y_hi - y_lo)

    def at(x: float, y: float) -> tuple[float, float]:
        return (x0 + left + (np.log10(x) - x_lo) / (x_hi - x_lo) * width,
                top + (1 - (y - y_lo) / (y_hi - y_lo)) * height)

    out = [f'<rect x="{x0 + left}" y="{top}" width="{width}" height="{height}" fill="none" '
           'stroke="#999"/>',
           f'<text x="{x0 + left + width / 2}" y="{top + height + 34}" text-anchor="middle">'
           'training molecules</text>',
           f'<text x="{x0 + 12}" y="{top + height / 2}" text-anchor="middle" '
           f'transform="rotate(-90 {x0 + 12} {top + height / 2})">{label}</text>']
    for n in (2_000, 10_000, 100_000, 200_000):
        if x_lo <= np.log10(n) <= x_hi:
            x, _ = at(n, y_lo)
            out.append(f'<text x="{x:.1f}" y="{top + height + 15}" text-anchor="middle">'
                       f'{n // 1000}k</text>')
    raw = (y_hi - y_lo) / 4
    power = 10 ** np.floor(np.log10(raw))
    step = min(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    for value in np.arange(np.ceil(y_lo / step) * step, y_hi, step):
        _, y = at(10 ** x_lo, value)
        shown = 0 if abs(value) < 1e-9 else value  # not "-0"
        out.append(f'<text x="{x0 + left - 4}" y="{y + 4:.1f}" text-anchor="end">{shown:.4g}</text>')
    for (name, series), colour in zip(points.items(), ("#1f77b4", "#d62728")):
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (at(*p) for p in series))
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'
                for x, y in (at(*p) for p in series)]
        lx, ly = x0 + left + 80 * list(points).index(name), top - 10  # legend above the panel
        out.append(f'<text x="{lx}" y="{ly}" fill="{colour}">{name}</text>')
    return out


def plot(results: dict, path: Path) -> None:
    """Fit seconds and held-out RMSE against training molecules (logP target), as SVG (no
    plotting library needed)."""
    rows = [r for r in results["fits"] if r["target"] == "logp"]
    series = {kind: [r for r in rows if r["path"] == kind] for kind in ("exact", "landmarks")}
    seconds = {k: [(r["n"], r["fit_s"]) for r in v] for k, v in series.items() if v}
    errors = {k: [(r["n"], r["rmse"]) for r in v] for k, v in series.items() if v}
    body = _panel(seconds, 0, "fit seconds (2 cores)") + _panel(errors, 380, "held-out RMSE (logP)")
    path.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="760" height="270" '
                    'font-family="sans-serif" font-size="12">' + "".join(body) + "</svg>\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--plot", action="store_true", help="redraw the figure from the saved run")
    args = parser.parse_args()
    if args.plot:
        from _common import RESULTS

        plot(json.loads((RESULTS / "scale.json").read_text()), FIGURE)
        return
    if args.child:
        kind, *rest = args.child
        result = {"fit": lambda: fit_child(int(rest[0]), rest[1], rest[2] == "exact",
                                           rest[3] if len(rest) > 3 else None),
                  "score": lambda: score_child(rest[0]),
                  "dask": lambda: dask_child(int(rest[0]))}[kind]()
        print(json.dumps(result))
        return
    sizes = [n for n in SIZES if not args.quick or n <= 8_000]
    fits, exact_ratio, scoring = [], {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            plans = [("logp", "default")] + [("logp", "exact")] * (n in EXACT_SIZES)
            plans += [("interaction", "default")] * (n in INTERACTION_SIZES)
            plans += [("interaction", "exact")] * (n in EXACT_SIZES and n in INTERACTION_SIZES)
            plans += [("logp_class", "default")] * (n in CLASSIFICATION_SIZES)
            for target, mode in plans:
                save = [str(Path(tmp) / "model")] if (n == 100_000 and target == "logp"
                                                      and mode == "default") else []
                row = _in_child("fit", str(n), target, mode, *save)
                row["mode"] = mode
                fits.append(row)
                print(json.dumps(row), flush=True)
        for target in ("logp", "interaction"):
            pair = [r for r in fits if r["n"] in EXACT_SIZES and r["target"] == target]
            if len(pair) == 2:
                by = {r["mode"]: r for r in pair}
                exact_ratio[target] = round(by["default"]["rmse"] / by["exact"]["rmse"], 4)
        if (Path(tmp) / "model").exists():
            scoring = _in_child("score", str(Path(tmp) / "model"))
            print(json.dumps(scoring), flush=True)
    dask = _in_child("dask", "10000" if not args.quick else "2000")
    print(json.dumps(dask), flush=True)
    results = {"protocol": protocol(__doc__), "fits": fits, "exact_ratio": exact_ratio,
               "scoring": scoring, "dask": dask}
    print(save_run("scale", results, markdown, full=not args.quick))
    if not args.quick:
        plot(results, FIGURE)


if __name__ == "__main__":
    main()
