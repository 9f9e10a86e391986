"""The milearn paper's table, end to end: four synthetic tasks and a real one.

Each task is run with the package's default model and a classical baseline, on a seeded 75/25
split, and reported next to the paper's figure:

1. Digit bags, "is a 3 in the bag?" (paper: accuracy 0.96, KID 0.99). KID: share of positive
   test bags whose top-weighted instance is a 3.
2. Digit bags, label = mean digit (paper: R² 0.73, KID 0.89). KID: mean Spearman correlation
   of instance weights with the digits.
3. Fragment logP, label = sum of the BRICS fragments' Crippen contributions (paper: R² 0.85,
   KID 0.88). KID: share of test molecules whose top fragment has the largest |contribution|.
4. Protein-protein interaction, pairs of proteins as bags of sequence windows
   (:func:`milearn_core.datasets.make_ppi_bags`; paper: accuracy 0.99, KID 1.0). KID: share of
   positive test pairs whose top window overlaps a planted motif. Harder variants (shorter,
   mutated motifs, decoy half-motifs) are reported without a paper figure.
5. Aqueous solubility (the bundled set, its own split): RMSE and R², no paper figure.

Defaults: ``MILClassifier()`` (``pooling="auto"``: attention, or self-attention where
attention leaves the validation loss high) for the classification tasks,
``MILRegressor()`` (instance_mean) for digit-mean, ``QSARModel()`` (BRICS fragments, bag-kernel
model) for the molecules. Baselines: ``BagWrapper(random forest, pool="mean")`` for the
synthetic tasks, instance weights by leave-one-instance-out; an SVR on Morgan fingerprints for
solubility. The digit split and models match ``benchmarks/digits.py``; fragment-logP and
solubility use the data, splits and helpers of ``benchmarks/molecules.py``.

Run from the repository root::

    python -m benchmarks.paper            # full run, writes benchmarks/results/paper.{md,json}
    python -m benchmarks.paper --readme   # ... and copies the table into README.md
    python -m benchmarks.paper --quick    # small settings, writes paper_quick.{md,json}
    python -m benchmarks.paper --tasks fragment_logp --readme   # rerun one row, keep the rest
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.svm import SVR

from benchmarks._common import RESULTS, machine
from benchmarks.digits import PAPER as DIGIT_PAPER
from benchmarks.molecules import fragment_logp, fragment_logp_split, morgan_matrix, regression_scores
from milearn_core import BagWrapper, MILClassifier, MILRegressor, instance_weights, kid_accuracy, kid_spearman
from milearn_core.datasets import MILDataset, make_digit_bags, make_ppi_bags

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- paper-table:start -->", "<!-- paper-table:end -->"

PAPER = {"digits_or": DIGIT_PAPER["or"], "digits_mean": DIGIT_PAPER["mean"],
         "fragment_logp": {"r2": 0.85, "kid": 0.88}, "ppi": {"accuracy": 0.99, "kid": 1.0},
         "solubility": None}
TITLES = {"digits_or": "Digit bags: is a 3 in the bag?", "digits_mean": "Digit bags: mean digit",
          "fragment_logp": "Fragment logP", "ppi": "Protein-protein interaction",
          "solubility": "Solubility (real data)"}
SIZES = {"full": {"digits": 1000, "logp": 6000, "ppi": 1000},
         "quick": {"digits": 300, "logp": 800, "ppi": 300}}
PPI_VARIANTS = {
    "shorter motifs (5 residues)": {"motif_length": 5},
    "mutated motifs (20 % of residues)": {"mutation_rate": 0.2},
    "decoy half-motifs (half the negatives carry motif A or B)": {"decoy_fraction": 0.5},
}


def split(data: MILDataset, seed: int) -> tuple[MILDataset, MILDataset]:
    """The seeded 75/25 train/test split of ``benchmarks/digits.py``."""
    train, test = train_test_split(np.arange(len(data.y)), test_size=0.25, random_state=seed)
    return data.subset(train), data.subset(test)


def score_bags(model, train: MILDataset, test: MILDataset, task: str, kid: str | None = "keys",
               top2: bool = False, decimals: int = 1) -> dict:
    """Fit ``model`` on ``train``; test-set accuracy or R² (and RMSE), KID and fit seconds.

    Parameters
    ----------
    model : MIL estimator
    train, test : MILDataset
    task : {"classification", "regression"}
        Accuracy (classification) or R² and RMSE (regression).
    kid : {"keys", "spearman"} or None
        ``"keys"``: :func:`kid_accuracy`, over the positive test bags for classification and
        over every test bag for regression. ``"spearman"``: :func:`kid_spearman` of the weights
        against ``instance_values``. None: no KID (no known key instances).
    top2 : bool
        Also ``kid_top2``: the two top-weighted instances are both key instances (rules that
        need two).
    decimals : int
        Of ``fit_seconds``.

    Returns
    -------
    dict
        ``accuracy`` or ``r2`` and ``rmse``, ``kid`` (and ``kid_top2``), ``fit_seconds``; for
        networks also ``epochs``, ``runs`` and the fitted ``pooling``.
    """
    start = time.perf_counter()
    model.fit(train.bags, train.y)
    seconds = time.perf_counter() - start
    pred = model.predict(test.bags)
    if task == "classification":
        out = {"accuracy": float(accuracy_score(test.y, pred))}
    else:
        out = {"r2": float(r2_score(test.y, pred)),
               "rmse": float(np.sqrt(mean_squared_error(test.y, pred)))}
    if kid is not None:
        weights = instance_weights(model, test.bags)
        if kid == "spearman":
            out["kid"] = float(kid_spearman(weights, test.instance_values))
        else:
            bags = np.flatnonzero(test.y == 1) if task == "classification" else None
            out["kid"] = float(kid_accuracy(weights, test.key_instances, bags=bags))
            if top2:
                out["kid_top2"] = float(kid_accuracy(weights, test.key_instances, top_k=2,
                                                     bags=bags))
    out["fit_seconds"] = round(seconds, decimals)
    if hasattr(model, "n_runs_"):
        out.update(epochs=int(model.n_epochs_), runs=int(model.n_runs_), pooling=model.pooling_)
    return out


def baseline(task: str, seed: int, n_jobs: int) -> BagWrapper:
    """The classical baseline: a random forest (300 trees) on mean-pooled bags."""
    forest = (RandomForestClassifier if task == "classification" else RandomForestRegressor)(
        n_estimators=300, n_jobs=n_jobs, random_state=seed)
    return BagWrapper(forest, pool="mean")


def bag_task(data: MILDataset, task: str, seed: int, n_jobs: int, kid: str = "keys") -> dict:
    """The default network and the baseline on one synthetic bag task."""
    train, test = split(data, seed)
    default = (MILClassifier if task == "classification" else MILRegressor)(random_state=seed)
    name = f"{type(default).__name__}(pooling={default.pooling!r})"
    return {"bags": len(data.y), "train": len(train.y), "test": len(test.y),
            "default": {"model": name, **score_bags(default, train, test, task, kid)},
            "baseline": {"model": "BagWrapper(RandomForest, pool='mean')",
                         **score_bags(baseline(task, seed, n_jobs), train, test, task, kid)}}


def logp_bags(n: int) -> tuple[MILDataset, MILDataset]:
    """Fragment-logP bags for the baseline: in-parent Morgan counts folded to 2048 bits (dense),
    on the split of :func:`benchmarks.molecules.fragment_logp_split`."""
    from qsarmil.featurize import MoleculeBagger

    task, train, test = fragment_logp_split(n)
    bagger = MoleculeBagger(morgan_size=2048, sparse=False, progress=False)
    parts = []
    for index in (train, test):
        bags = bagger.fit_transform([task.smiles[i] for i in index])
        kept = index[bagger.valid_index_]
        parts.append(MILDataset(bags, task.y[kept], [task.key_instances[i] for i in kept],
                                [task.contributions[i] for i in kept]))
    return parts[0], parts[1]


def run_logp(n: int, seed: int, n_jobs: int) -> dict:
    """Fragment logP: ``QSARModel()`` (:func:`benchmarks.molecules.fragment_logp`) and the
    baseline on the same molecules and split; fit seconds include bagging for the default."""
    default = fragment_logp(n)
    train, test = logp_bags(n)
    return {"molecules": default["molecules"], "train": default["train"], "test": default["test"],
            "default": {"model": "QSARModel() (BRICS fragments, BagKernelRegressor)",
                        "r2": float(default["r2"]), "kid": float(default["kid"]),
                        "fit_seconds": default["fit_seconds"]},
            "baseline": {"model": "BagWrapper(RandomForest, pool='mean'), 2048-bit bags",
                         **score_bags(baseline("regression", seed, n_jobs), train, test, "regression")}}


def run_solubility() -> dict:
    """Solubility on its own split: ``QSARModel()`` against an SVR on Morgan fingerprints (the
    settings of :func:`benchmarks.molecules.real_task`, without its random forest)."""
    from qsarmil.data import load_dataset
    from qsarmil.featurize import MoleculeBagger
    from qsarmil.model import QSARModel

    data = load_dataset("solubility")
    train, test = data[data.split == "train"], data[data.split == "test"]
    start = time.perf_counter()
    svr = SVR(C=5.0).fit(morgan_matrix(list(train.smiles)), train.target)
    svr_seconds = time.perf_counter() - start
    svr_pred = svr.predict(morgan_matrix(list(test.smiles)))
    model = QSARModel(bagger=MoleculeBagger(progress=False))
    start = time.perf_counter()
    model.fit(train.smiles, train.target)
    seconds = time.perf_counter() - start
    pred = model.predict(test.smiles).astype(float)
    failed = int(np.isnan(pred).sum())   # scored as the training mean, as benchmarks/molecules.py does
    pred = np.where(np.isnan(pred), float(train.target.mean()), pred)
    return {"train": len(train), "test": len(test),
            "default": {"model": "QSARModel() (BRICS fragments, BagKernelRegressor)",
                        **regression_scores(test.target, pred), "fit_seconds": round(seconds, 1),
                        "failed_test_rows": failed},
            "baseline": {"model": "SVR(C=5) on Morgan fingerprints (radius 2, 2048 bits)",
                         **regression_scores(test.target, svr_pred), "fit_seconds": round(svr_seconds, 1)}}


TASK_NAMES = ("digits_or", "digits_mean", "fragment_logp", "ppi", "solubility")


def run_all(quick: bool = False, seed: int = 0, n_jobs: int = 1, log=print,
            only: list[str] | None = None, saved: dict | None = None) -> dict:
    """Every task of the table; ``quick`` shrinks the synthetic sets (see ``SIZES``).

    ``only``: run just these tasks and take the others (and the PPI variants) from ``saved``, a
    previous run's results; the tasks rerun are listed under ``"rerun"`` with the date.
    """
    size = SIZES["quick" if quick else "full"]
    started = time.perf_counter()
    runs = {
        "digits_or": lambda: bag_task(make_digit_bags("or", size["digits"], 10, seed),
                                      "classification", seed, n_jobs),
        "digits_mean": lambda: bag_task(make_digit_bags("mean", size["digits"], 10, seed),
                                        "regression", seed, n_jobs, kid="spearman"),
        "fragment_logp": lambda: run_logp(size["logp"], seed, n_jobs),
        "ppi": lambda: bag_task(make_ppi_bags(size["ppi"], random_state=seed), "classification",
                                seed, n_jobs),
        "solubility": run_solubility,
    }
    tasks, variants = {}, {}
    for name, run in runs.items():
        if only is not None and name not in only:
            tasks[name] = saved["tasks"][name]
            continue
        tasks[name] = res = run()
        log(f"{name}: {fmt_pair(name, res['default'])} (default)  {fmt_pair(name, res['baseline'])} "
            f"(baseline)  paper {fmt_pair(name, PAPER[name])}  "
            f"[{res['default']['fit_seconds']} s / {res['baseline']['fit_seconds']} s]")
    if only is None or "ppi" in only:  # the variants go with the PPI row
        for name, setting in PPI_VARIANTS.items():
            variants[name] = {"setting": setting, **bag_task(
                make_ppi_bags(size["ppi"], random_state=seed, **setting), "classification", seed,
                n_jobs)}
            log(f"PPI, {name}: {fmt_pair('ppi', variants[name]['default'])} (default)  "
                f"{fmt_pair('ppi', variants[name]['baseline'])} (baseline)")
    if only is not None:
        rerun = {**saved.get("rerun", {}), **{name: machine()["date"] for name in only}}
        return {**saved, "tasks": tasks, "rerun": rerun,
                "ppi_variants": variants or saved["ppi_variants"]}
    return {"machine": machine(), "quick": quick, "seed": seed, "sizes": size,
            "wall_seconds": round(time.perf_counter() - started, 1), "paper": PAPER,
            "tasks": tasks, "ppi_variants": variants}


# ------------------------------------------------------------------------------------ output


def metric_names(task: str) -> tuple[str, str]:
    """The two figures a task reports, in table order."""
    if task in ("digits_or", "ppi"):
        return "accuracy", "kid"
    return ("r2", "kid") if task != "solubility" else ("r2", "rmse")


def fmt_pair(task: str, figures: dict | None) -> str:
    """``0.996 / 0.992`` (``-`` where there is no figure)."""
    if not figures:
        return "-"
    return " / ".join(f"{figures[k]:.3f}" if k in figures else "-" for k in metric_names(task))


def main_table(results: dict) -> str:
    """The markdown table of the five tasks (the part README.md copies)."""
    rows = ["| task | metric | paper (milearn) | qsarmil default | classical baseline "
            "| fit s (default / baseline) |", "|---|---|---|---|---|---|"]
    for name, res in results["tasks"].items():
        metric = " / ".join({"accuracy": "accuracy", "kid": "KID", "r2": "R²", "rmse": "RMSE"}[k]
                            for k in metric_names(name))
        rows.append(f"| {TITLES[name]} | {metric} | {fmt_pair(name, results['paper'][name])} "
                    f"| {fmt_pair(name, res['default'])} | {fmt_pair(name, res['baseline'])} "
                    f"| {res['default']['fit_seconds']} / {res['baseline']['fit_seconds']} |")
    return "\n".join(rows) + "\n"


def paper_verdict(results: dict) -> str:
    """One sentence: which paper rows the default model matches or beats, and which it misses."""
    met, missed = [], []
    for name, paper in results["paper"].items():
        if not paper:
            continue
        ours = results["tasks"][name]["default"]
        short = [k for k in paper if ours[k] < paper[k]]
        (missed if short else met).append(TITLES[name] + (f" ({', '.join(short)})" if short else ""))
    text = f"Default model at or above the paper's figures on {len(met)} of {len(met) + len(missed)} tasks"
    return text + (f"; below on: {'; '.join(missed)}." if missed else ".")


def _size(res: dict) -> str:
    if "bags" in res:
        return f"{res['bags']} bags"
    if "molecules" in res:
        return f"{res['molecules']} molecules"
    return f"{res['train']} + {res['test']} molecules"


def render_markdown(results: dict) -> str:
    """``paper.md``: the table, the models, the harder PPI variants and the machine."""
    m, tasks = results["machine"], results["tasks"]
    lines = [
        "# The milearn paper's table, reproduced" + (" (quick settings)" if results["quick"] else ""),
        "",
        f"`python -m benchmarks.paper{' --quick' if results['quick'] else ''}`, seed {results['seed']}, "
        f"{results['wall_seconds'] / 60:.1f} min wall time on {m['processor']} "
        f"(torch threads: {m['threads']}; Python {m['python']}, torch {m['torch']}; {m['date']}).",
        "Test splits: 25 % of the bags (seeded); solubility: the bundled set's own split. Paper figures:"
        " the milearn paper; it gives none for solubility.",
        *(["Rows rerun since (`--tasks`), with the models of that date: "
           + ", ".join(f"{TITLES[n]} ({d})" for n, d in results["rerun"].items()) + "."]
          if results.get("rerun") else []),
        "",
        main_table(results),
        paper_verdict(results),
        "",
        "Models (default; baseline) and data:",
        "",
    ]
    lines += [f"- {TITLES[n]} ({_size(r)}): `{r['default']['model']}`"
              + (f" (chose `{r['default']['pooling']}`)" if "pooling" in r["default"] else "")
              + f"; `{r['baseline']['model']}`"
              for n, r in tasks.items()]
    lines += ["", "Fit seconds of the default fragment models include bagging the molecules; "
              "the baselines' do not. Baseline KID: "
              "leave-one-instance-out weights (how much the prediction moves without each instance).",
              "", "## Harder PPI variants (no paper figure, no target)", "",
              f"Same size, split and models as the protein-protein row ({_size(tasks['ppi'])}); "
              "one setting of `make_ppi_bags` changed each.", "",
              "| variant | accuracy / KID, default | accuracy / KID, baseline | fit s (default / baseline) |",
              "|---|---|---|---|"]
    for name, res in results["ppi_variants"].items():
        lines.append(f"| {name} | {fmt_pair('ppi', res['default'])} | {fmt_pair('ppi', res['baseline'])} "
                     f"| {res['default']['fit_seconds']} / {res['baseline']['fit_seconds']} |")
    return "\n".join(lines) + "\n"


def table_in(markdown: str) -> str:
    """The main table of a ``paper.md`` text or the README's Results section."""
    return re.search(r"^\| task \| metric .*?(?=^(?!\|))", markdown + "\n", re.M | re.S).group(0)


def update_readme(results: dict, readme: Path = README) -> None:
    """Put the main table between the README's paper-table markers."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    readme.write_text(text[:start] + "\n" + main_table(results) + text[end:], encoding="utf-8")


def write_results(results: dict, out: Path) -> tuple[Path, Path]:
    """``paper.{md,json}`` (``paper_quick.*`` for quick runs) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stem = "paper_quick" if results["quick"] else "paper"
    md, js = out / f"{stem}.md", out / f"{stem}.json"
    js.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md.write_text(render_markdown(results), encoding="utf-8")
    return md, js


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small synthetic sets (CI)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads and random-forest jobs (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for paper.{md,json}")
    parser.add_argument("--readme", action="store_true", help="copy the table into README.md")
    parser.add_argument("--tasks", nargs="+", choices=TASK_NAMES,
                        help="rerun only these rows; the others come from the saved run")
    parser.add_argument("--rerender", action="store_true",
                        help="run nothing: write paper.md (and, with --readme, the README table) "
                             "again from the saved paper.json")
    args = parser.parse_args(argv)
    if args.readme and args.quick:
        parser.error("--readme takes the figures of a full run; drop --quick")
    if args.rerender:
        stem = "paper_quick" if args.quick else "paper"
        results = json.loads((args.out / f"{stem}.json").read_text(encoding="utf-8"))
    else:
        if args.threads:
            torch.set_num_threads(args.threads)
        saved = None
        if args.tasks:
            path = args.out / f"{'paper_quick' if args.quick else 'paper'}.json"
            if not path.is_file():
                parser.error(f"--tasks reruns rows of a saved run, and {path} does not exist")
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("seed") != args.seed or set(saved.get("tasks", ())) != set(TASK_NAMES):
                parser.error(f"--tasks: {path} is not a whole run with seed {args.seed}")
        results = run_all(args.quick, args.seed, n_jobs=torch.get_num_threads(),
                          log=lambda line: print(line, flush=True), only=args.tasks, saved=saved)
    for path in write_results(results, args.out):
        print(f"saved {path}")
    if args.readme:
        update_readme(results)
        print(f"updated the Results table in {README}")


if __name__ == "__main__":
    main()
