"""Draw the README's activity-cliff pair: ``python docs/img/make_cliff_pair.py``.

The first pair (seeded) that ``benchmarks/attribution.py`` finds by MoleculeACE's definition in
CHEMBL2835_Ki, the smallest bundled set, compared by the default model trained on its training
split: whatever the model makes of it, it is not chosen for looking right.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from attribution import cliff_pairs  # noqa: E402

from qsarmil import QSARModel, load_dataset  # noqa: E402

SET = "CHEMBL2835_Ki"


def main() -> None:
    data = load_dataset(SET)
    smiles, y = data.smiles.tolist(), data.target.to_numpy()
    test = (data.split == "test").to_numpy()
    i, j = cliff_pairs(smiles, y, test)[0][:2]
    train = data[~test]
    model = QSARModel(target_name="pKi - 9", units="log units").fit(train.smiles, train.target)
    pair = model.compare(smiles[i], smiles[j], measured_a=float(y[i]), measured_b=float(y[j]))
    print(pair.summary())
    (Path(__file__).parent / "cliff_pair.png").write_bytes(pair.draw(fmt="png"))
    print("a:", smiles[i], "test" if test[i] else "train", "b:", smiles[j],
          "test" if test[j] else "train", "|diff|", float(np.abs(y[i] - y[j])))


if __name__ == "__main__":
    main()
