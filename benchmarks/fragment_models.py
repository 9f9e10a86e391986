"""Which estimator should fragment-bag regression use by default? Candidates on the same bags.

Every candidate sees the same bags (the default MoleculeBagger: BRICS fragments, Morgan counts
of each fragment's atoms in the parent molecule, radius 2, 32768 bits). The former default,
``instance_sum`` on 2048-bit counts of the fragment cut out, is the reference line.
Tasks: fragment-logP (R² and KID, as in molecules.py), solubility and five MoleculeACE sets
(test R² and RMSE on their own split). Neural models use random_state=0.

Run: python benchmarks/fragment_models.py [--n-logp 6000]
"""

from __future__ import annotations

import argparse
import time

from _common import save_results
from molecules import ACE_SETS, fragment_logp_split, regression_scores
from sklearn.metrics import r2_score

from milearn_core import AdditiveRegressor, MILRegressor, kid_accuracy
from qsarmil.data import load_dataset
from qsarmil.featurize import MoleculeBagger

CANDIDATES = {
    "additive_ridge": lambda: AdditiveRegressor(),
    "instance_sum": lambda: MILRegressor(pooling="instance_sum", random_state=0),
    "instance_mean": lambda: MILRegressor(pooling="instance_mean", random_state=0),
    "attention": lambda: MILRegressor(pooling="attention", random_state=0),
    "dynamic": lambda: MILRegressor(pooling="dynamic", random_state=0),
}
FORMER_DEFAULT = ("former_default", lambda: MILRegressor(pooling="instance_sum", random_state=0),
                  dict(descriptors="morgan", morgan_size=2048, sparse=False))


def _runs():
    for name, make in CANDIDATES.items():
        yield name, make, {}
    yield FORMER_DEFAULT


def logp_task(n: int) -> dict:
    task, train, test = fragment_logp_split(n)
    out = {}
    for name, make, bagger_kw in _runs():
        bags = MoleculeBagger(progress=False, **bagger_kw).fit_transform(task.smiles)
        model, start = make(), time.perf_counter()
        model.fit([bags[i] for i in train], task.y[train])
        seconds = time.perf_counter() - start
        test_bags = [bags[i] for i in test]
        weights = model.instance_weights(test_bags)
        out[name] = {"r2": r2_score(task.y[test], model.predict(test_bags)),
                     "kid": kid_accuracy(weights, [task.key_instances[i] for i in test]),
                     "fit_seconds": round(seconds, 1)}
        print(f"fragment-logP {name}: R² {out[name]['r2']:.3f} KID {out[name]['kid']:.3f} "
              f"({seconds:.0f} s)", flush=True)
    return out


def real_task(name: str) -> dict:
    data = load_dataset(name)
    train, test = data[data.split == "train"], data[data.split == "test"]
    out = {}
    for label, make, bagger_kw in _runs():
        bagger = MoleculeBagger(progress=False, **bagger_kw)
        tr, te = bagger.fit_transform(train.smiles), bagger.transform(test.smiles)
        assert len(tr) == len(train) and len(te) == len(test)  # these sets all bag
        pred = make().fit(tr, train.target.to_numpy()).predict(te)
        out[label] = regression_scores(test.target, pred)
    print(f"{name}: " + "  ".join(f"{k} R² {v['r2']:.3f}" for k, v in out.items()), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-logp", type=int, default=6000)
    args = parser.parse_args()
    results = {"fragment_logp": logp_task(args.n_logp),
               "real": {name: real_task(name) for name in ["solubility", *ACE_SETS]}}
    save_results("fragment_models", results)


if __name__ == "__main__":
    main()
