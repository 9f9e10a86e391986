"""Where does a pair's difference go? The pair split's charge rule, chosen on training molecules only.

The pair split (qsarmil.attribution.pair_atom_contributions) gives a feature's share to the
molecule that holds more of it. A share held at a common atom can stay there ("holder": each
atom keeps what its own extra features do) or go to the changed atoms it depends on ("change":
a Morgan environment's atoms and their neighbours, an atom pair's shortest paths and ends'
neighbours, in the atom's own molecule, else in the other around the matched atom). This run
picks the default without the test molecules: on each of the 30 MoleculeACE sets, the training
split alone is split again (seeded 75/25), the default model is fitted on the larger part, and
activity-cliff pairs holding a molecule of the smaller part are scored as in
benchmarks/attribution.py (MoleculeACE's cliff definition, uncommon atoms by FMCS; direction,
faithfulness, atom accuracy), for both rules and the per-molecule atom contributions.

The settings of qsarmil.recipes.key_fragment_model, the same way: on the largest-fragment and
threshold tasks of qsarmil.nonadditive, the training split of benchmarks/attribution.py is split
again (seeded 75/25) and each setting (in-parent Morgan radius 1 or 2; the network's defaults, or
learning rate 1e-3 for up to 300 epochs with patience 40) is scored on the smaller part (R² or
accuracy). Key atoms are not looked at.

Run: python benchmarks/attribution_validation.py [--sets ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import protocol, save_run
from attribution import POOL, _split, cliff_pairs, method_means, ours, pair_view, pooled, score_pairs
from molecules import molecule_pool

from qsarmil.data import list_datasets, load_dataset
from qsarmil.featurize import MoleculeBagger
from qsarmil.model import QSARModel
from qsarmil.nonadditive import make_nonadditive_task
from qsarmil.recipes import KEY_FRAGMENT_NETWORK, KEY_FRAGMENT_RADIUS, key_fragment_model

RULES = ("change", "holder")
METHODS = tuple(f"ours_pair_{rule}" for rule in RULES) + ("ours_atoms",)
SCORES = ("direction", "faithfulness", "atom_accuracy")


def run_set(name: str) -> dict:
    """Inner split of the set's training molecules; both rules scored on its cliff pairs."""
    start = time.time()
    data = load_dataset(name)
    train = data[data.split == "train"]
    smiles, y = list(train.smiles), train.target.to_numpy()
    fit, held_out = _split(len(smiles))
    valid = np.zeros(len(smiles), dtype=bool)
    valid[held_out] = True
    pairs = cliff_pairs(smiles, y, valid)
    model = QSARModel(bagger=MoleculeBagger(progress=False), uncertainty=None).fit(
        [smiles[k] for k in fit], y[fit])
    needed = sorted({k for p in pairs for k in p})
    result = {"n_pairs": len(pairs)}
    if pairs:
        predictions, attributions, mols = ours(model, [smiles[k] for k in needed])
        prepared = dict(zip(needed, mols))
        views = {f"ours_pair_{rule}": pair_view(model, prepared, rule) for rule in RULES}
        scored = score_pairs(pairs, smiles, y, {"ours": dict(zip(needed, predictions))},
                             {"ours_atoms": dict(zip(needed, attributions["ours_atoms"]))}, views,
                             methods=METHODS)
        result["n_scored"] = len(scored[METHODS[0]]["direction"])
        result["methods"] = method_means(scored)
    else:
        result["n_scored"] = 0
    result["seconds"] = round(time.time() - start, 1)
    return result


KEY_FRAGMENT_TRAINING = {"defaults": {"pooling": "instance_max", "random_state": 0},
                         "slower, longer": KEY_FRAGMENT_NETWORK}


def key_fragment_settings() -> dict:
    """Validation score of each setting on the two tasks set by one fragment."""
    pool, out = molecule_pool(POOL), {}
    for name in ("max_fragment", "threshold"):
        task = make_nonadditive_task(name, pool)
        train = task.subset(_split(len(task.smiles))[0])
        fit, held_out = (train.subset(k) for k in _split(len(train.smiles)))
        out[name] = {}
        for radius in (1, 2):
            for label, network in KEY_FRAGMENT_TRAINING.items():
                model = key_fragment_model(task.task, MoleculeBagger(progress=False), uncertainty=None)
                model.bagger.set_params(morgan_radius=radius)
                model.set_params(estimator=type(model.estimator)(**network))
                out[name][f"radius {radius}, {label}"] = model.fit(fit.smiles, fit.y).score(
                    held_out.smiles, held_out.y)
        print(f"{name}: {out[name]}", flush=True)
    return out


def summary(per_set: dict) -> dict:
    scored = {n: r for n, r in per_set.items() if r["n_scored"]}
    out = {"sets": len(per_set), "sets_with_pairs": len(scored),
           "pairs": sum(r["n_scored"] for r in scored.values()), **pooled(scored, METHODS, SCORES)}
    out["sets_change_direction_above_holder"] = sum(
        r["methods"]["ours_pair_change"]["direction"] > r["methods"]["ours_pair_holder"]["direction"]
        for r in scored.values())
    out["sets_holder_direction_above_change"] = sum(
        r["methods"]["ours_pair_holder"]["direction"] > r["methods"]["ours_pair_change"]["direction"]
        for r in scored.values())
    return out


def markdown(results: dict) -> str:
    s = results["summary"]
    names = {"ours_pair_change": "pair split, shares to the change (default)",
             "ours_pair_holder": "pair split, shares at their holders",
             "ours_atoms": "atoms of each molecule (explain)"}
    lines = [f"Validation pairs (training molecules only): {s['pairs']} activity-cliff pairs in "
             f"{s['sets_with_pairs']} of {s['sets']} MoleculeACE sets.", "",
             "| attribution | direction (GDScore) | faithfulness | atom accuracy |", "|---|---|---|---|"]
    lines += [f"| {names[m]} | " + " | ".join(f"{s[m][k]:.3f}" for k in SCORES) + " |" for m in METHODS]
    lines += ["", f"Direction per set: the change rule above the holder rule on "
              f"{s['sets_change_direction_above_holder']} sets, below on "
              f"{s['sets_holder_direction_above_change']}."]
    settings = results.get("key_fragment_settings")
    if settings:
        chosen = f"radius {KEY_FRAGMENT_RADIUS}, slower, longer"
        lines += ["", "Settings of `key_fragment_model` (validation score on training molecules; "
                  f"the recipe's: {chosen}):", "",
                  "| setting | " + " | ".join(settings) + " |", "|---|" + "---|" * len(settings)]
        lines += [f"| {k} | " + " | ".join(f"{settings[t][k]:.3f}" for t in settings) + " |"
                  for k in next(iter(settings.values()))]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+")
    args = parser.parse_args()
    names = args.sets or [n for n in list_datasets() if n.startswith("CHEMBL")]
    per_set = {}
    for name in names:
        r = per_set[name] = run_set(name)
        print(f"{name}: {r['n_scored']} pairs, {r['seconds']} s", flush=True)
    results = {"protocol": protocol(__doc__), "sets": per_set, "summary": summary(per_set)}
    if not args.sets:  # a partial run skips the recipe's settings (eight network fits)
        results["key_fragment_settings"] = key_fragment_settings()
    print(save_run("attribution_validation", results, markdown, full=not args.sets))


if __name__ == "__main__":
    main()
