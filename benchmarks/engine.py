"""The MIL engine's networks: rules that are not sums, fit time, and KID, against the old defaults.

Every synthetic task is a seeded 75/25 split of 1000 bags (the splits of ``benchmarks/paper.py``),
one torch thread, all models in the same run:

- ``default``: ``MILClassifier()`` / ``MILRegressor()`` as they are now (classifier:
  ``pooling="auto"``, attention then self-attention when attention leaves the validation loss
  high, and a 10 % tolerance on improvements once the model fits; both: one-cycle learning
  rate, 60 epochs at most, patience 10, up to 3 restarts of a run that learned nothing). The
  rows of one run; ``--merge`` reruns rows into it (listed under "rerun"). A one-epoch fit
  first pays
  the process's one-time import of ``torch._dynamo`` (about 1.5 s) outside the timings.
- ``previous``: the defaults before (classifier pooling ``"attention"``, regressor
  ``"instance_mean"``, learning rate 1e-3 constant, 200 epochs, patience 20, no tolerance, no
  restarts): the
  fit-time ratio is measured against it.
- ``forest``: a random forest (300 trees) on mean-pooled bags, KID by leave-one-instance-out.

Tasks: digit bags OR ("a 3"), mean digit, AND ("a 3 and a 7"), XOR ("a 3 or a 7, not both");
protein pairs (motif A in one protein and motif B in the other) and three harder variants;
fragment logP with a network (BRICS fragments of pool molecules, 2048-bit in-parent Morgan
bags, Crippen contributions; 3000 molecules); conformer solubility (5 ETKDG conformers a
molecule, 3-D descriptors, the bundled split; the conformer bags made once and shared by the
models). KID: share of positive test bags whose top-weighted instance is a key instance
(top-1), and whose two top instances both are (top-2, where the rule needs two: AND and the
protein pairs); mean digit: Spearman correlation of the weights with the digits; fragment logP:
the top fragment has the largest |contribution|.

milearn's published figures stand next to the four tasks the paper has. milearn 1.0.6 itself
is not run: it is not on this machine's package index, so no same-run anchor could be written
and checked; its earlier measured time to 0.98 on digit OR (2.7 s, our run of it) is the mark.

Targets (issue 24): AND, XOR and decoy PPI >= 0.95 accuracy, top-2 KID >= 0.90 on AND; the
paper's rows at or above the paper; digit OR and digit-mean fits <= 1/3 of the previous
defaults' time at the same accuracy and digit OR <= milearn's 2.7 s.

Run: python -m benchmarks.engine [--quick] [--tasks or,xor] [--merge] (from the repository root)
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date

import numpy as np
import torch
from sklearn.metrics import accuracy_score

from benchmarks._common import RESULTS, protocol, save_run
from benchmarks.paper import PAPER, PPI_VARIANTS, baseline, logp_bags, score_bags, split
from milearn_core import MILClassifier, MILRegressor
from milearn_core.datasets import MILDataset, make_digit_bags, make_ppi_bags

PREVIOUS = dict(learning_rate=1e-3, max_epochs=200, patience=20, lr_schedule="constant",
                restarts=0, tol=0.0)
PARTIAL = RESULTS.parent / ".cache" / "engine_partial.json"  # rows of the run in progress
MILEARN_OR_SECONDS = 2.7  # milearn 1.0.6, digit OR to 0.98, our earlier same-machine run
TARGETS = {"interaction_accuracy": 0.95, "and_top2_kid": 0.90, "time_ratio": 1 / 3}
PAPER_ROWS = {"or": "digits_or", "mean": "digits_mean", "ppi": "ppi", "fragment_logp": "fragment_logp"}
PAIR_RULES = {"and", "ppi", *(f"ppi: {name}" for name in PPI_VARIANTS)}


def _models(kind: str, seed: int) -> dict:
    if kind == "classification":
        return {"default": MILClassifier(random_state=seed),
                "previous": MILClassifier(pooling="attention", random_state=seed, **PREVIOUS),
                "forest": baseline("classification", seed, 1)}
    return {"default": MILRegressor(random_state=seed),
            "previous": MILRegressor(pooling="instance_mean", random_state=seed, **PREVIOUS),
            "forest": baseline("regression", seed, 1)}


def bag_task(train: MILDataset, test: MILDataset, kind: str, seed: int, kid: str | None = "keys",
             top2: bool = False, log=print, name: str = "") -> dict:
    """Every model of :func:`_models` on one split."""
    result = {"train": len(train.y), "test": len(test.y)}
    for label, model in _models(kind, seed).items():
        result[label] = score_bags(model, train, test, kind, kid, top2, decimals=2)
        log(f"  {name} {label}: {result[label]}")
    return result


def digit_split(task: str, n: int, seed: int):
    return split(make_digit_bags(task, n, 10, seed), seed)


def conformer_solubility(seed: int, quick: bool) -> tuple[MILDataset, MILDataset, float]:
    """Conformer bags of the solubility set's own split (made once), and the seconds it took."""
    from qsarmil.data import load_dataset
    from qsarmil.featurize import MoleculeBagger

    data = load_dataset("solubility")
    parts, start = [], time.perf_counter()
    bagger = MoleculeBagger(bag_type="conformers", n_conformers=5, optimize=None, n_jobs=2,
                            time_limit=10, progress=False, conformer_seed=42 + seed)
    for which in ("train", "test"):
        rows = data[data.split == which]
        if quick:
            rows = rows.iloc[:200]
        bags = bagger.fit_transform(list(rows.smiles))
        y = rows.target.to_numpy(dtype=float)[bagger.valid_index_]
        parts.append(MILDataset(bags, y, [np.zeros(len(b), bool) for b in bags],
                                [np.zeros(len(b)) for b in bags]))
    return parts[0], parts[1], time.perf_counter() - start


def search_xor(n: int, seed: int, log=print) -> dict:
    """The stepwise search's pooling step on digit XOR (20 % hold-out, 3 seeds per candidate),
    with one and with two jobs: the pooling it keeps and the refit's test accuracy."""
    from milearn_core import StepwiseSearchCV, default_search_space

    train, test = digit_split("xor", n, seed)
    steps = default_search_space(MILClassifier())[:1]
    out = {"steps": [[name, list(values)] for name, values in steps]}
    for jobs in (1, 2):
        start = time.perf_counter()
        search = StepwiseSearchCV(MILClassifier(random_state=seed), steps, validation_fraction=0.2,
                                  random_state=seed, n_jobs=jobs, progress=False).fit(train.bags, train.y)
        best = search.best_estimator_
        out[f"n_jobs={jobs}"] = {
            "pooling": search.best_params_["pooling"], "chosen": best.pooling_,
            "hold_out_score": round(float(search.best_score_), 4), "fits": int(search.n_fits_),
            "accuracy": float(accuracy_score(test.y, best.predict(test.bags))),
            "seconds": round(time.perf_counter() - start, 1)}
        log(f"  search_xor n_jobs={jobs}: {out[f'n_jobs={jobs}']}")
    return out


def milearn_anchor(seed: int) -> dict:
    """Where milearn 1.0.6 stands in this run: not driven here (see the module docstring)."""
    try:
        import milearn  # noqa: F401
        found = "it imports here"
    except ImportError:
        found = "it is not installed (not on this machine's package index)"
    return {"available": False, "why": f"this benchmark does not run milearn 1.0.6: {found}; "
            "its earlier time to 0.98 on digit OR is the mark",
            "earlier_or_seconds_to_0.98": MILEARN_OR_SECONDS}


def run(tasks: list[str], quick: bool, seed: int, log=print) -> dict:
    n = 300 if quick else 1000
    results: dict = {}
    for task in tasks:
        start = time.perf_counter()
        if task in ("or", "and", "xor", "mean"):
            kind = "regression" if task == "mean" else "classification"
            train, test = digit_split(task, n, seed)
            res = bag_task(train, test, kind, seed, "spearman" if task == "mean" else "keys",
                           top2=task in PAIR_RULES, log=log, name=task)
            if task in ("and", "xor"):  # the rules that need restarts: how often across seeds
                res["other_seeds"] = {}
                for other in range(seed + 1, seed + (2 if quick else 4)):
                    tr, te = digit_split(task, n, other)
                    res["other_seeds"][other] = score_bags(
                        MILClassifier(random_state=other), tr, te, kind, top2=task == "and",
                        decimals=2)
                    log(f"  {task} default, seed {other}: {res['other_seeds'][other]}")
        elif task.startswith("ppi"):
            setting = PPI_VARIANTS[task[5:]] if task != "ppi" else {}
            train, test = split(make_ppi_bags(n, random_state=seed, **setting), seed)
            res = bag_task(train, test, "classification", seed, top2=True, log=log, name=task)
            res["setting"] = setting
        elif task == "search_xor":
            res = search_xor(n, seed, log)
        elif task == "fragment_logp":
            train, test = logp_bags(800 if quick else 3000)
            res = bag_task(train, test, "regression", seed, log=log, name=task)
            # The target is a sum over fragments: the one argument that says so.
            res["instance_sum"] = score_bags(
                MILRegressor(pooling="instance_sum", random_state=seed), train, test,
                "regression", decimals=2)
            log(f"  {task} instance_sum: {res['instance_sum']}")
        elif task == "conformer_solubility":
            train, test, bag_seconds = conformer_solubility(seed, quick)
            res = {"bagging_seconds": round(bag_seconds, 1), "train": len(train.y),
                   "test": len(test.y)}
            from qsarmil.model import default_estimator
            models = {"default": default_estimator("regression", "conformers").set_params(
                random_state=seed),
                "previous": MILRegressor(pooling="attention", random_state=seed, **PREVIOUS),
                "forest": baseline("regression", seed, 1)}
            for label, model in models.items():
                res[label] = score_bags(model, train, test, "regression", None, decimals=2)
                log(f"  {task} {label}: {res[label]}")
        else:
            raise ValueError(f"unknown task {task!r}")
        res["paper"] = PAPER.get(PAPER_ROWS.get(task))
        res["wall_seconds"] = round(time.perf_counter() - start, 1)
        results[task] = res
        if not quick:  # a crash later in the run keeps the rows done (see --merge)
            done = json.loads(PARTIAL.read_text()) if PARTIAL.is_file() else {}
            PARTIAL.write_text(json.dumps({**done, task: res}, indent=1))
    return results


TASKS = ["or", "mean", "and", "xor", "ppi", *(f"ppi: {name}" for name in PPI_VARIANTS),
         "fragment_logp", "conformer_solubility", "search_xor"]


def verdicts(results: dict) -> dict:
    """Each target of issue 24 that this run can judge: met or not, with its figure."""
    out = {}
    for task in ("and", "xor", "ppi: decoy half-motifs (half the negatives carry motif A or B)"):
        if task in results:
            acc = results[task]["default"]["accuracy"]
            out[f"{task} accuracy >= 0.95"] = {"value": acc, "met": acc >= 0.95}
    if "and" in results:
        kid2 = results["and"]["default"]["kid_top2"]
        out["AND top-2 KID >= 0.90"] = {"value": kid2, "met": kid2 >= 0.90}
    for task in ("or", "mean"):
        if task in results:
            res = results[task]
            ratio = res["default"]["fit_seconds"] / res["previous"]["fit_seconds"]
            metric = "r2" if task == "mean" else "accuracy"
            same = res["default"][metric] >= res["previous"][metric] - 0.005
            out[f"{task} fit <= 1/3 of previous at the same {metric}"] = {
                "value": round(ratio, 3), "met": ratio <= 1 / 3 and same,
                "default": res["default"][metric], "previous": res["previous"][metric]}
    if "search_xor" in results:
        runs = [results["search_xor"][f"n_jobs={j}"] for j in (1, 2)]
        same = runs[0]["pooling"] == runs[1]["pooling"] and runs[0]["accuracy"] == runs[1]["accuracy"]
        out["search on XOR >= 0.95, same with 1 and 2 jobs"] = {
            "value": runs[0]["accuracy"], "met": runs[0]["accuracy"] >= 0.95 and same}
    if "or" in results:
        seconds = results["or"]["default"]["fit_seconds"]
        out["or fit <= milearn's 2.7 s"] = {"value": seconds, "met": seconds <= MILEARN_OR_SECONDS}
    for task in PAPER_ROWS:
        if task in results and results[task].get("paper"):
            res, paper = results[task]["default"], results[task]["paper"]
            met = all(res[k] >= paper[k] for k in paper if k in res)
            label = (f"{task} at or above the paper" if task != "fragment_logp" else
                     "fragment_logp with the default network at or above the paper (the paper "
                     "table's row is QSARModel's, benchmarks/paper.py)")
            out[label] = {"value": {k: round(res[k], 3) for k in paper if k in res},
                          "paper": paper, "met": met}
    return out


def _fig(res: dict, key: str) -> str:
    return f"{res[key]:.3f}" if key in res else "-"


def markdown(results: dict) -> str:
    rows = ["| task | metric | paper | default | previous default | forest "
            "| fit s (default / previous / forest) | default: pooling, epochs, runs |",
            "|---|---|---|---|---|---|---|---|"]
    for task, res in results["tasks"].items():
        if task == "search_xor":
            continue
        metric = "accuracy" if "accuracy" in res["default"] else "r2"
        kids = [k for k in ("kid", "kid_top2") if k in res["default"]]
        keys = [metric, *kids] if kids else [metric, "rmse"]
        label = " / ".join({"accuracy": "accuracy", "r2": "R²", "kid": "KID", "kid_top2": "top-2 KID",
                            "rmse": "RMSE"}[k] for k in keys)
        paper = res.get("paper") or {}
        cells = [" / ".join(_fig(res[m], k) for k in keys) for m in ("default", "previous", "forest")]
        d = res["default"]
        rows.append(f"| {task} | {label} | {' / '.join(_fig(paper, k) for k in keys) if paper else '-'} "
                    f"| {cells[0]} | {cells[1]} | {cells[2]} | {d['fit_seconds']} / "
                    f"{res['previous']['fit_seconds']} / {res['forest']['fit_seconds']} "
                    f"| {d.get('pooling', '-')}, {d.get('epochs', '-')}, {d.get('runs', '-')} |")
    lines = ["# The MIL engine: interactions, fit time, KID", "", protocol(__doc__), "",
             *rows, "", "Targets:", ""]
    for name, verdict in results["verdicts"].items():
        lines.append(f"- {name}: {verdict['value']} ({'met' if verdict['met'] else 'MISSED'})")
    for task in ("and", "xor"):
        if "other_seeds" in results["tasks"].get(task, {}):
            seeds = results["tasks"][task]["other_seeds"]
            lines += ["", f"Default on {task.upper()} with other seeds (data, split and model): "
                      + ", ".join(f"seed {k}: {r['accuracy']:.3f} ({r['runs']} runs)"
                                  for k, r in seeds.items()) + "."]
    if "instance_sum" in results["tasks"].get("fragment_logp", {}):
        r = results["tasks"]["fragment_logp"]["instance_sum"]
        lines += ["", f"Fragment logP with `MILRegressor(pooling=\"instance_sum\")` (the target is a sum "
                  f"over fragments): R² {r['r2']:.3f}, KID {r['kid']:.3f}, {r['fit_seconds']} s."]
    if "search_xor" in results["tasks"]:
        res = results["tasks"]["search_xor"]
        lines += ["", "Stepwise search on digit XOR (pooling step, 20 % hold-out, 3 seeds a candidate): "
                  + "; ".join(f"{jobs}: keeps `{r['pooling']}` (fitted `{r['chosen']}`), hold-out "
                              f"{r['hold_out_score']:.3f}, test accuracy {r['accuracy']:.3f}, "
                              f"{r['fits']} fits, {r['seconds']} s"
                              for jobs, r in res.items() if jobs.startswith("n_jobs")) + "."]
    for rows, why in results.get("rerun", {}).items():
        lines += ["", f"Rerun: {rows}: {why}."]
    anchor = results["milearn"]
    lines += ["", f"milearn same-run anchor: {anchor.get('why') or anchor.get('note')}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 bags, 800 molecules")
    parser.add_argument("--tasks", default=",".join(TASKS),
                        help="comma-separated subset of: " + ", ".join(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--merge", action="store_true",
                        help="rerun --tasks into the saved full run (results/engine.json, or "
                             "the rows a crashed run saved in benchmarks/.cache)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # The first optimiser of a process imports torch._dynamo (about 1.5 s): paid here, not by
    # whichever model happens to be timed first.
    MILClassifier(max_epochs=1, hidden_layer_sizes=(4,)).fit([np.zeros((2, 3))] * 20, [0, 1] * 10)
    tasks = args.tasks.split(",")
    started = time.perf_counter()
    results = run(tasks, args.quick, args.seed)
    full = not args.quick and tasks == TASKS
    rerun: dict = {}
    if args.merge:
        whole = RESULTS / "engine.json"
        previous = json.loads(whole.read_text()) if whole.is_file() else {}
        saved = previous.get("tasks") or json.loads(PARTIAL.read_text())
        results = {t: results.get(t, saved.get(t)) for t in TASKS if t in results or t in saved}
        rerun = {**previous.get("rerun", {}), ", ".join(tasks): f"rerun with --merge on {date.today()}"}
        full = set(results) == set(TASKS)
    out = {"seed": args.seed, "quick": args.quick, "torch_threads": 1, "tasks": results,
           "verdicts": verdicts(results), "milearn": milearn_anchor(args.seed),
           "targets": TARGETS, "wall_seconds": round(time.perf_counter() - started, 1),
           **({"rerun": rerun} if rerun else {})}
    print(save_run("engine", out, markdown, full))


if __name__ == "__main__":
    main()
