"""Search, zoo and ablations: what tuning, consensus, class weights and poolings buy.

1. Tuning (fragment-logP and five MoleculeACE sets, each on its own train/test split; every
   search sees the training part only): default vs StepwiseSearchCV vs scikit-learn
   RandomizedSearchCV with the same number of fits vs the full grid where affordable (at most
   60 candidates); test R², number of fits, wall time; single best model vs consensus
   (ConsensusRegressor of the stepwise search's top 3, refit), and the paper's consensus: the
   three families' predictions averaged, default vs tuned. Three families: the bag-kernel
   model (QSARModel's default: in-parent Morgan + atom-pair counts) and the additive (ridge)
   model on 32768-bit bags, both searched with shuffled 3-fold CV, and the ``instance_mean``
   network on 2048-bit bags (its 32768-bit first layer makes one fit take a minute on two
   cores; searched on one seeded 20 % hold-out: one fit per candidate). Search spaces are
   :func:`milearn_core.default_search_space` (all of it for the kernel and additive models; the
   first four steps, pooling, hidden sizes, learning rate and weight decay, for the network).
   Fragment-logP (1000 molecules, as the milearn StepwiseHopt measurement) also gives KID.
2. Model zoo on one MoleculeACE set: brics/recap x descriptor sets x estimators, ranked on a
   validation split of the training part; the top 3's consensus on the test split.
3. Imbalance: digit-bag OR classification with 50 %, 20 % and 5 % positive bags; balanced
   accuracy, ROC AUC and KID accuracy, with and without ``class_weight="balanced"``.
4. Structural alerts (:mod:`qsarmil.alerts`): positive when a Brenk alert (nitro group,
   Michael acceptor, three-membered heterocycle) matches; balanced sample of the molecule pool;
   accuracy and KID (top fragment contains the alert's atoms) of the default classifier.
5. Digit AND/XOR: every pooling, and a stepwise search, on benchmarks/digits.py's data.

Run: python benchmarks/search.py [--quick] [--n-logp 1000] [--sets ...] [--pool 40000]

The docs' tables are rendered from the saved JSON (:data:`TABLES`) into
``benchmarks/results/search_*.md``; ``--tables-only`` renders them again from the existing JSON
without running anything.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, save_results
from digits import run_task
from molecules import ACE_SETS, fragment_logp_split, molecule_pool
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, mean_squared_error, r2_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, RandomizedSearchCV, ShuffleSplit, train_test_split

from milearn_core import (
    AdditiveRegressor,
    BagKernelRegressor,
    ConsensusRegressor,
    MILClassifier,
    MILRegressor,
    StepwiseSearchCV,
    default_search_space,
    kid_accuracy,
)
from milearn_core.datasets import make_digit_bags
from milearn_core.nn import pooling_names
from qsarmil.alerts import make_alert_task, top_fragment_hits
from qsarmil.data import load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import REGRESSION_FRAGMENT_DESCRIPTORS, QSARModel, default_estimator
from qsarmil.zoo import ModelZoo

DIGIT_HOLDOUT = 0.2  # the digit-rule search's hold-out share
FULL_GRID_LIMIT = 60  # candidates a full grid may have to count as affordable here
PAPER = {"single": [0.51, 0.52], "consensus": [0.53, 0.57]}  # R², before -> after tuning


def _log(text: str) -> None:
    print(text, flush=True)


# -- 1. tuning ---------------------------------------------------------------------------------

def _families():
    return {
        "kernel": dict(make=lambda: BagKernelRegressor(), n_steps=None,
                       bagger=dict(descriptors=REGRESSION_FRAGMENT_DESCRIPTORS),
                       cv=KFold(3, shuffle=True, random_state=0)),
        "additive": dict(make=lambda: AdditiveRegressor(), bagger=dict(), n_steps=None,
                         cv=KFold(3, shuffle=True, random_state=0)),
        "network": dict(make=lambda: MILRegressor(random_state=0), bagger=dict(morgan_size=2048), n_steps=4,
                        cv=ShuffleSplit(1, test_size=0.2, random_state=0)),
    }


def _short(value) -> str:
    """A parameter value for the results file: a long tuple (a penalty range) by its ends."""
    if isinstance(value, tuple) and len(value) > 4:
        return f"{len(value)} values {float(min(value)):.0e}..{float(max(value)):.0e}"
    return repr(value)


def _readable(params: dict) -> dict:
    return {k: _short(v) for k, v in params.items()}


def _weights(model, X) -> list[np.ndarray]:
    """Instance weights; for a consensus of members without exact contributions (an attention
    network), the mean of the members' own weights (each bag still sums to 1)."""
    try:
        return model.instance_weights(X)
    except ValueError:
        per_member = [m.instance_weights(X) for m in model.estimators_]
        return [np.mean(ws, axis=0) for ws in zip(*per_member)]


def _test_scores(model, X_te, y_te, keys) -> dict:
    pred = model.predict(X_te)
    out = {"r2": float(r2_score(y_te, pred)), "rmse": float(np.sqrt(mean_squared_error(y_te, pred)))}
    if keys is not None:
        out["kid"] = kid_accuracy(_weights(model, X_te), keys)
    return out


def tune_family(name: str, spec: dict, X_tr, y_tr, X_te, y_te, keys, quick: bool) -> dict:
    base = spec["make"]()
    steps = default_search_space(base)[:2 if quick else spec["n_steps"]]
    out = {"search_space": {k: [_short(v) for v in vals] for k, vals in steps}, "predictions": {}}
    start = time.perf_counter()
    default = clone(base).fit(X_tr, y_tr)
    out["default"] = {**_test_scores(default, X_te, y_te, keys), "fits": 1,
                      "seconds": time.perf_counter() - start}
    out["predictions"]["default"] = default.predict(X_te)
    start = time.perf_counter()
    search = StepwiseSearchCV(base, steps, cv=spec["cv"], random_state=0, progress=False).fit(X_tr, y_tr)
    out["stepwise"] = {**_test_scores(search, X_te, y_te, keys), "fits": search.n_fits_ + 1,
                       "seconds": time.perf_counter() - start, "validation": search.best_score_,
                       "best_params": _readable(search.best_params_)}
    out["predictions"]["stepwise"] = search.predict(X_te)
    n_candidates = len(search.cv_results_["params"])
    start = time.perf_counter()
    rand = RandomizedSearchCV(base, dict(steps), n_iter=n_candidates, cv=spec["cv"], random_state=0,
                              refit=True).fit(X_tr, y_tr)
    out["random"] = {**_test_scores(rand.best_estimator_, X_te, y_te, keys),
                     "fits": n_candidates * search.n_splits_ + 1, "seconds": time.perf_counter() - start,
                     "validation": float(rand.best_score_),
                     "best_params": _readable(rand.best_params_)}
    grid_size = int(np.prod([len(v) for _, v in steps]))
    if grid_size <= FULL_GRID_LIMIT:
        start = time.perf_counter()
        grid = GridSearchCV(base, dict(steps), cv=spec["cv"]).fit(X_tr, y_tr)
        out["full_grid"] = {**_test_scores(grid.best_estimator_, X_te, y_te, keys),
                            "fits": grid_size * search.n_splits_ + 1, "seconds": time.perf_counter() - start}
    else:
        out["full_grid"] = {"skipped": f"{grid_size} candidates x {search.n_splits_} splits"}
    # Consensus: the stepwise search's three best candidates (each with its candidate seed),
    # refit on the training part and averaged, contributions too (ConsensusRegressor).
    start = time.perf_counter()
    ranked = np.argsort(search.cv_results_["rank_test_score"], kind="stable")[:3]
    members = []
    for i in ranked:
        params = dict(search.cv_results_["params"][i])
        if "random_state" in base.get_params() and search.cv_results_["seed"][i] is not None:
            params["random_state"] = search.cv_results_["seed"][i]
        members.append((f"top{len(members) + 1}", clone(base).set_params(**params)))
    consensus = ConsensusRegressor(members).fit(X_tr, y_tr)
    out["stepwise_consensus3"] = {**_test_scores(consensus, X_te, y_te, keys), "members": len(members),
                                  "fits": len(members), "seconds": time.perf_counter() - start}
    line = "  ".join(f"{k} {v['r2']:.3f}" + (f"/{v['kid']:.2f}" if "kid" in v else "")
                     + f" ({v['fits']} fits, {v['seconds']:.0f} s)"
                     for k, v in out.items() if isinstance(v, dict) and "fits" in v)
    _log(f"  {name}: {line}")
    return out


def tuning_task(label: str, train_smiles, y_tr, test_smiles, y_te, keys_te, quick: bool) -> dict:
    _log(f"{label} ({len(train_smiles)} train / {len(test_smiles)} test)")
    out = {"train": len(train_smiles), "test": len(test_smiles), "families": {}}
    for name, spec in _families().items():
        bagger = MoleculeBagger(progress=False, **spec["bagger"])
        X_tr, X_te = bagger.fit_transform(train_smiles), bagger.transform(test_smiles)
        if len(X_te) != len(test_smiles) or len(X_tr) != len(train_smiles):
            raise RuntimeError(f"{label}: some molecules could not be bagged")
        out["families"][name] = tune_family(name, spec, X_tr, np.asarray(y_tr), X_te, np.asarray(y_te),
                                            keys_te, quick)
    # The paper's consensus: one model per family (each on its own bags), predictions averaged.
    predictions = {name: fam.pop("predictions") for name, fam in out["families"].items()}
    out["family_consensus"] = {
        which: float(r2_score(y_te, np.mean([p[which] for p in predictions.values()], axis=0)))
        for which in ("default", "stepwise")}
    _log(f"  consensus of the {len(predictions)} families: default {out['family_consensus']['default']:.3f}"
         f"  stepwise {out['family_consensus']['stepwise']:.3f}")
    return out


def fragment_logp(n: int, quick: bool) -> dict:
    task, train, test = fragment_logp_split(n)
    smiles = task.smiles
    return tuning_task(f"fragment-logP (n={n})", [smiles[i] for i in train], task.y[train],
                       [smiles[i] for i in test], task.y[test], [task.key_instances[i] for i in test], quick)


def ace_set(name: str, quick: bool) -> dict:
    data = load_dataset(name)
    train, test = data[data.split == "train"], data[data.split == "test"]
    return tuning_task(name, list(train.smiles), train.target.to_numpy(), list(test.smiles),
                       test.target.to_numpy(), None, quick)


# -- 2. zoo ------------------------------------------------------------------------------------

def zoo_task(name: str, folder, quick: bool) -> dict:
    data = load_dataset(name)
    train, test = data[data.split == "train"], data[data.split == "test"]
    estimators = {"kernel": BagKernelRegressor(), "additive": AdditiveRegressor(),
                  "net_instance_mean": MILRegressor(pooling="instance_mean", random_state=0),
                  "net_attention": MILRegressor(pooling="attention", random_state=0)}
    if not quick:
        from sklearn.ensemble import RandomForestRegressor

        from milearn_core import BagWrapper
        estimators["bag_rf"] = BagWrapper(RandomForestRegressor(200, random_state=0), pool="mean")
    sets = {"morgan_atompair2048": {"descriptors": REGRESSION_FRAGMENT_DESCRIPTORS, "morgan_size": 2048},
            "pharmacophore": "pharmacophore"}
    if not quick:
        sets["rdkit2d"] = "rdkit2d"
    zoo = ModelZoo(folder, bag_types=("brics", "recap"), descriptor_sets=sets, estimators=estimators,
                   progress=False)
    start = time.perf_counter()
    table = zoo.run(train.smiles, train.target)
    seconds = time.perf_counter() - start
    fitted = table[table.status.isin(["trained", "loaded"])]
    test_r2 = {}
    for row in fitted.itertuples():
        model = QSARModel.load(Path(folder) / "models" / row.name)
        test_r2[row.name] = float(r2_score(test.target, model.predict(test.smiles)))
    consensus = {k: float(r2_score(test.target, zoo.consensus_predict(list(test.smiles), k)))
                 for k in (1, 3, 5)}
    rows = [{"name": r.name, "validation_r2": float(r.score), "test_r2": test_r2[r.name],
             "fit_seconds": float(r.fit_seconds)} for r in fitted.itertuples()]
    _log(f"zoo {name}: {len(rows)} models in {seconds:.0f} s; best on validation {rows[0]['name']} "
         f"(test R² {rows[0]['test_r2']:.3f}); consensus top-3 test R² {consensus[3]:.3f}")
    return {"models": rows, "skipped": int((table.status == "skipped").sum()), "seconds": seconds,
            "consensus_test_r2": {f"top{k}": v for k, v in consensus.items()}}


# -- 3. imbalance ------------------------------------------------------------------------------

def _sample(data, share: float, n: int, rng) -> list[int]:
    pos, neg = np.flatnonzero(data.y == 1), np.flatnonzero(data.y == 0)
    n_pos = max(2, int(round(share * n)))
    return list(rng.permutation(np.r_[rng.choice(pos, n_pos, replace=False),
                                      rng.choice(neg, n - n_pos, replace=False)]))


def imbalance(quick: bool) -> dict:
    n_train, n_test = (300, 400) if quick else (600, 1000)
    data = make_digit_bags("or", n_bags=4 * (n_train + n_test), bag_size=10, random_state=0)
    out = {}
    for share in (0.5, 0.2, 0.05):
        rng = np.random.RandomState(0)
        idx = _sample(data, share, n_train + n_test, rng)
        train, test = data.subset(idx[:n_train]), data.subset(idx[n_train:])
        for weight in (None, "balanced"):
            start = time.perf_counter()
            model = MILClassifier(class_weight=weight, random_state=0).fit(train.bags, train.y)
            pos = np.flatnonzero(test.y == 1)
            res = {"train_positives": int(train.y.sum()), "test_positives": int(len(pos)),
                   "accuracy": float(np.mean(model.predict(test.bags) == test.y)),
                   "balanced_accuracy": float(balanced_accuracy_score(test.y, model.predict(test.bags))),
                   "roc_auc": float(roc_auc_score(test.y, model.predict_proba(test.bags)[:, 1])),
                   "kid": kid_accuracy(model.instance_weights(test.bags), test.key_instances, bags=pos),
                   "fit_seconds": time.perf_counter() - start}
            key = f"{int(share * 100)}% positive, class_weight={weight}"
            out[key] = res
            _log(f"imbalance {key}: balanced accuracy {res['balanced_accuracy']:.3f}  ROC AUC "
                 f"{res['roc_auc']:.3f}  KID {res['kid']:.3f}")
    return out


# -- 4. structural alerts ----------------------------------------------------------------------

def alerts(pool_size: int) -> dict:
    start = time.perf_counter()
    task = make_alert_task(molecule_pool(pool_size))
    train, test = task.balanced_split(0.75, random_state=0)
    scan = time.perf_counter() - start
    out = {"pool": pool_size, "positives": int(task.y.sum()),
           "reachable_positives": int(task.reachable.sum()),
           "train": len(train.smiles), "test": len(test.smiles), "scan_seconds": scan,
           "alerts": {}, "target": {"accuracy": 0.95, "kid": 0.95}}
    for names in task.alert_names:
        for a in names:
            out["alerts"][a] = out["alerts"].get(a, 0) + 1
    estimator = default_estimator("classification").set_params(random_state=0)
    start = time.perf_counter()
    model = QSARModel(bagger=MoleculeBagger(progress=False), estimator=estimator).fit(train.smiles, train.y)
    fit = time.perf_counter() - start
    table, instances = model.predict_with_weights(test.smiles)
    pred = table.prediction.to_numpy().astype(int)
    found = np.flatnonzero((test.y == 1) & test.reachable)
    hits = top_fragment_hits([instances[i] for i in found], [test.alert_atoms[i] for i in found])
    positives = np.flatnonzero(test.y == 1)
    out["default_classifier"] = {
        "accuracy": float(np.mean(pred == test.y)),
        "roc_auc": float(roc_auc_score(test.y, table["proba_1"].to_numpy())),
        "kid": float(hits.mean()), "kid_molecules": int(len(found)),
        "kid_all_positives": float(hits.sum() / len(positives)), "fit_seconds": fit}
    r = out["default_classifier"]
    _log(f"alerts ({out['positives']} positives in {pool_size}; {len(found)} test positives with the "
         f"alert whole in one fragment): accuracy {r['accuracy']:.3f}  KID {r['kid']:.3f}  "
         f"(target 0.95/0.95)")
    return out


# -- 5. digit AND / XOR ------------------------------------------------------------------------

def _rule_scores(model, seconds: float, test, top_k: int) -> dict:
    pos = np.flatnonzero(test.y == 1)
    weights = model.instance_weights(test.bags)
    return {"accuracy": float(np.mean(model.predict(test.bags) == test.y)),
            "kid": kid_accuracy(weights, test.key_instances, top_k=top_k, bags=pos), "fit_seconds": seconds}


def _fmt(res: dict) -> str:
    return f"{res['accuracy']:.3f}/{res['kid']:.2f}"


def digit_rule(task: str, poolings: list[str], steps: list) -> dict:
    """Every pooling and a stepwise search on one rule; KID top-2 for AND (both keys needed)."""
    res = {"default": run_task(task, 0), "poolings": {}}
    data = make_digit_bags(task, n_bags=1000, bag_size=10, random_state=0)  # as digits.run_task
    tr, te = train_test_split(np.arange(1000), test_size=0.25, random_state=0)
    train, test = data.subset(tr), data.subset(te)
    top_k = 2 if task == "and" else 1
    for pooling in poolings:
        start = time.perf_counter()
        model = MILClassifier(pooling=pooling, random_state=0).fit(train.bags, train.y)
        res["poolings"][pooling] = _rule_scores(model, time.perf_counter() - start, test, top_k)
    start = time.perf_counter()
    search = StepwiseSearchCV(MILClassifier(random_state=0), steps, validation_fraction=DIGIT_HOLDOUT,
                              random_state=0, progress=False).fit(train.bags, train.y)
    res["stepwise"] = {**_rule_scores(search, time.perf_counter() - start, test, top_k),
                       "fits": search.n_fits_ + 1,
                       "best_params": _readable(search.best_params_)}
    best = max(res["poolings"], key=lambda p: res["poolings"][p]["accuracy"])
    _log(f"digit {task} (accuracy/KID): default {_fmt(res['default'])}; best pooling {best} "
         f"{_fmt(res['poolings'][best])}; stepwise {_fmt(res['stepwise'])} {res['stepwise']['best_params']}")
    return res


def digit_rules(quick: bool) -> dict:
    poolings = ["attention", "self_attention", "hopfield", "max"] if quick else pooling_names()
    steps = default_search_space(MILClassifier())[:1 if quick else 4]
    out = {task: digit_rule(task, poolings, steps) for task in ("and", "xor")}
    out["poolings_at_0.95_on_both"] = [p for p in poolings if all(
        out[t]["poolings"][p]["accuracy"] >= 0.95 for t in ("and", "xor"))]
    return out


# -- tables for the docs (rendered from the saved JSON, never typed by hand) -------------------

_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven",
                 8: "eight", 9: "nine", 10: "ten"}
_DASH = "\u2013"  # en dash: nothing to show


def _md_row(cells) -> str:
    return "|" + "".join(f" {c} |" if c else " |" for c in cells)


def _r2_cell(res: dict) -> str:
    return f"{res['r2']:.3f}" + (f" / {res['kid']:.2f}" if "kid" in res else "")


def tuning_markdown(results: dict) -> str:
    """The tuning table: test R² (and KID on fragment-logP) of each family per data set, default vs
    stepwise vs RandomizedSearchCV vs full grid vs the stepwise top-3 consensus; then the mean
    over the MoleculeACE sets. A grid too large to run is sized the first time it is skipped."""
    methods = ("default", "stepwise", "random", "full_grid", "stepwise_consensus3")
    lines = [_md_row(["data set", "model", "default", "stepwise", "random (same fits)", "full grid",
                      "top-3 consensus", "fits: stepwise / full grid", "seconds: stepwise / random"]),
             "|---|---|---|---|---|---|---|---|---|"]
    sized = set()
    for name, task in results["tuning"].items():
        label = "fragment-logP (R² / KID)" if name == "fragment_logp" else name
        for i, (family, fam) in enumerate(task["families"].items()):
            cells = []
            for method in methods:
                res = fam[method]
                if "skipped" in res:
                    cells.append(_DASH if res["skipped"] in sized else f"({res['skipped'].split(' x ')[0]})")
                    sized.add(res["skipped"])
                else:
                    cells.append(_r2_cell(res))
            grid_fits = fam["full_grid"].get("fits", _DASH)
            lines.append(_md_row([label if i == 0 else "", family, *cells,
                                  f"{fam['stepwise']['fits']} / {grid_fits}",
                                  f"{fam['stepwise']['seconds']:.0f} / {fam['random']['seconds']:.0f}"]))
    ace = [task for name, task in results["tuning"].items() if name != "fragment_logp"]
    if len(ace) > 1:
        label = f"mean of the {_NUMBER_WORDS.get(len(ace), len(ace))} MoleculeACE sets"
        for i, family in enumerate(ace[0]["families"]):
            cells = []
            for method in methods:
                runs = [task["families"][family][method] for task in ace]
                cells.append(_DASH if any("skipped" in r for r in runs)
                             else f"{np.mean([r['r2'] for r in runs]):.3f}")
            lines.append(_md_row([label if i == 0 else "", family, *cells, "", ""]))
    return "\n".join(lines) + "\n"


def imbalance_markdown(results: dict) -> str:
    """The imbalance table: balanced accuracy / ROC AUC / KID per positive share and class weight."""
    shares: dict[str, dict[str, dict]] = {}
    for key, res in results["imbalance"].items():
        share, weight = key.split("% positive, class_weight=")
        shares.setdefault(share, {})[weight] = res
    weights = list(next(iter(shares.values())))
    lines = [_md_row(["positive share", *(f"class_weight={w}" if w == "None" else f'class_weight="{w}"'
                                          for w in weights)]),
             "|---" * (len(weights) + 1) + "|"]
    for share, by_weight in shares.items():
        lines.append(_md_row([f"{share} %", *(f"{r['balanced_accuracy']:.3f} / {r['roc_auc']:.3f} / "
                                              f"{r['kid']:.3f}" for r in by_weight.values())]))
    return "\n".join(lines) + "\n"


# Rows of the digit-rule table after the default: poolings shown together, and whether KID is shown.
DIGIT_ROWS = [(("self_attention",), True), (("hopfield",), True), (("max",), True),
              (("sum", "mean"), True), (("instance_mean", "instance_sum"), True),
              (("gated_attention", "dynamic", "instance_max"), False)]


def digit_rules_markdown(results: dict) -> str:
    """The digit AND / XOR table: accuracy / KID of the default, every pooling and the stepwise
    search; accuracies in bold for the poolings that reach 0.95 on both rules."""
    rules = results["digit_rules"]
    tasks = ("and", "xor")
    bold = set(rules.get("poolings_at_0.95_on_both", []))

    def cell(res: dict, pooling: str | None = None, kid: bool = True) -> str:
        acc = f"{res['accuracy']:.3f}"
        acc = f"**{acc}**" if pooling in bold else acc
        return f"{acc} / {res['kid']:.2f}" if kid else acc

    lines = ["| model | AND | XOR |", "|---|---|---|",
             _md_row([f"default ({rules['and']['default']['pooling']})",
                      *(cell(rules[t]["default"]) for t in tasks)])]
    shown = {rules["and"]["default"]["pooling"]}
    rows = DIGIT_ROWS + [((p,), True) for p in rules["and"]["poolings"]
                         if p not in shown and all(p not in group for group, _ in DIGIT_ROWS)]
    for group, kid in rows:
        if not all(p in rules[t]["poolings"] for p in group for t in tasks):
            continue  # a quick run tries fewer poolings
        shown.update(group)
        lines.append(_md_row([" / ".join(f"`{p}`" for p in group),
                              *(", ".join(cell(rules[t]["poolings"][p], p, kid) for p in group)
                                for t in tasks)]))
    steps = {t: rules[t]["stepwise"] for t in tasks}
    fits = [str(s["fits"]) for s in steps.values()]
    fits_text = fits[0] if len(set(fits)) == 1 else " / ".join(fits)
    n_steps = len(steps["and"]["best_params"])
    lines.append(_md_row([f"stepwise search ({n_steps} step{'s' * (n_steps != 1)}, "
                          f"{DIGIT_HOLDOUT * 100:.0f} % hold-out, {fits_text} fits)",
                          *(f"{cell(s)} (`{s['best_params']['pooling'].strip(chr(39))}`)"
                            for s in steps.values())]))
    return "\n".join(lines) + "\n"


# results/NAME.md for each docs table (a quick run's as search_quick_*.md)
TABLES = {"tuning": tuning_markdown, "imbalance": imbalance_markdown, "digit_rules": digit_rules_markdown}


def write_tables(results: dict, name: str = "search", folder: Path = RESULTS) -> list[Path]:
    """Render every docs table of ``results`` to ``folder/NAME_TABLE.md``."""
    paths = []
    for table, render in TABLES.items():
        path = folder / f"{name}_{table}.md"
        path.write_text(render(results), encoding="utf-8")
        print(f"wrote {path}")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small: 600 logP molecules, one MoleculeACE set, two search steps; "
                             "saved as search_quick.json")
    parser.add_argument("--n-logp", type=int, default=1000)
    parser.add_argument("--sets", nargs="*", default=ACE_SETS)
    parser.add_argument("--pool", type=int, default=40000,
                        help="molecules scanned for alerts (default: the whole pool)")
    parser.add_argument("--zoo-folder", default=None, help="keep the zoo here (default: a temp folder)")
    parser.add_argument("--tables-only", action="store_true",
                        help="render the docs tables (results/search_*.md) from the saved JSON, run nothing")
    args = parser.parse_args()
    name = "search_quick" if args.quick else "search"  # a quick run keeps the full one
    if args.tables_only:
        write_tables(json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8")), name)
        return
    # One PyTorch thread: on two cores shared with other work, two threads made small networks
    # slower, not faster (10 epochs on 740 fragment-logP bags: 3.5 s against 2.1 s).
    torch.set_num_threads(1)
    sets = args.sets[:1] if args.quick else args.sets
    start = time.perf_counter()
    results = {"quick": args.quick, "paper": PAPER, "tuning": {}}
    results["tuning"]["fragment_logp"] = fragment_logp(600 if args.quick else args.n_logp, args.quick)
    for name in sets:
        results["tuning"][name] = ace_set(name, args.quick)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qsarmil-zoo-") as tmp:
        results["zoo"] = {sets[0]: zoo_task(sets[0], args.zoo_folder or f"{tmp}/zoo", args.quick)}
    results["imbalance"] = imbalance(args.quick)
    results["alerts"] = alerts(5000 if args.quick else args.pool)
    results["digit_rules"] = digit_rules(args.quick)
    results["seconds"] = time.perf_counter() - start
    _log(f"total {results['seconds'] / 60:.1f} min")
    save_results(name, results)
    write_tables(results, name)


if __name__ == "__main__":
    main()
