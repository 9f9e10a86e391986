"""Synthetic targets that are not a sum over fragments, on real molecules with known key atoms.

Fragment logP (:func:`qsarmil.data.make_fragment_logp`) is additive, so a model that adds up
fragment contributions can be exactly right. These tasks are not:

- ``"interaction"`` (classification): positive when a molecule holds both a carboxylic acid
  and an aryl halide; either alone is negative. Key atoms: both groups.
- ``"max_fragment"`` (regression): the largest Crippen logP of any one BRICS fragment (the
  sum of its atoms' contributions). Key atoms: the fragment that attains it.
- ``"threshold"`` (classification): positive when some BRICS fragment has a topological polar
  surface area (the sum of its atoms' Ertl contributions) of at least ``TPSA_THRESHOLD``.
  Key atoms: every such fragment.

Every index is into the molecule as a default :class:`~qsarmil.featurize.MoleculeBagger` bags
it (salts stripped, :func:`qsarmil.standardize.prepare_molecule`), as the model's atom
contributions are. :func:`key_atom_hits` scores attributions against the key atoms.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdMolDescriptors

from .data import fragment_contributions
from .fragments import brics_fragments
from .standardize import prepared_molecules

__all__ = ["KeyAtomTask", "NONADDITIVE_TASKS", "TPSA_THRESHOLD", "key_atom_hits",
           "make_nonadditive_task"]

NONADDITIVE_TASKS = ("interaction", "max_fragment", "threshold")
TPSA_THRESHOLD = 50.0  # Å², a polar fragment: an amide and a hydroxyl, a sulfonamide, ...
_ACID = Chem.MolFromSmarts("[CX3](=O)[OX2H1,OX1-]")
_ARYL_HALIDE = Chem.MolFromSmarts("c[F,Cl,Br,I]")


@dataclass
class KeyAtomTask:
    """Molecules, a label that is not a sum over fragments, and the atoms that set it.

    Attributes
    ----------
    name : str
        One of :data:`NONADDITIVE_TASKS`.
    task : {"classification", "regression"}
    smiles : list of str
    y : ndarray
    key_groups : list of list of tuple of int
        Per molecule, the groups of atoms the label rests on: for a positive of
        ``"interaction"`` the acid's atoms and the halide's; else one group (the key
        fragment(s)); empty where no atom is key (negatives).
    """

    name: str
    task: str
    smiles: list[str]
    y: np.ndarray
    key_groups: list[list[tuple[int, ...]]]

    def subset(self, index) -> KeyAtomTask:
        index = np.asarray(index, dtype=int)
        return KeyAtomTask(self.name, self.task, [self.smiles[i] for i in index], self.y[index],
                           [self.key_groups[i] for i in index])


def _matched_atoms(mol: Chem.Mol, query: Chem.Mol) -> tuple[int, ...]:
    return tuple(sorted({a for match in mol.GetSubstructMatches(query) for a in match}))


def _fragment_tpsa(mol: Chem.Mol, fragments) -> np.ndarray:
    atom_tpsa = np.asarray(rdMolDescriptors._CalcTPSAContribs(mol), dtype=np.float64)
    return np.array([atom_tpsa[list(f.atoms)].sum() for f in fragments])


def _label(name: str, mol: Chem.Mol) -> tuple[float, list[tuple[int, ...]]] | None:
    """(label, key groups) of one prepared molecule; None where the task has no use for it."""
    if name == "interaction":
        acid, halide = _matched_atoms(mol, _ACID), _matched_atoms(mol, _ARYL_HALIDE)
        return (1.0, [acid, halide]) if acid and halide else (0.0, [])
    fragments = brics_fragments(mol)
    if len(fragments) < 2:  # one fragment: nothing to single out
        return None
    if name == "max_fragment":
        values = fragment_contributions(mol)
        keys = np.flatnonzero(values >= values.max() - 1e-6)
        return float(values.max()), [tuple(sorted(a for k in keys for a in fragments[k].atoms))]
    values = _fragment_tpsa(mol, fragments)
    keys = np.flatnonzero(values >= TPSA_THRESHOLD)
    return ((1.0, [tuple(sorted(a for k in keys for a in fragments[k].atoms))]) if len(keys)
            else (0.0, []))


def make_nonadditive_task(name: str, smiles: Iterable[str], max_molecules: int = 2000,
                          random_state: int = 0) -> KeyAtomTask:
    """Label molecules for one of :data:`NONADDITIVE_TASKS` (see the module docstring).

    Classification tasks keep every positive (at most half of ``max_molecules``) and as many
    negatives drawn at random; for ``"interaction"`` half the negatives hold one of the two
    groups, so one group alone cannot tell the classes apart. Regression keeps a random
    ``max_molecules``. Molecules RDKit cannot parse are left out. Seeded.
    """
    if name not in NONADDITIVE_TASKS:
        raise ValueError(f"task must be one of {NONADDITIVE_TASKS}, got {name!r}")
    kept, ys, groups, one_group = [], [], [], []
    for smi, mol in prepared_molecules(smiles):
        labelled = _label(name, mol)
        if labelled is None:
            continue
        kept.append(smi)
        ys.append(labelled[0])
        groups.append(labelled[1])
        one_group.append(name == "interaction" and not labelled[1] and (
            mol.HasSubstructMatch(_ACID) or mol.HasSubstructMatch(_ARYL_HALIDE)))
    y, one_group = np.array(ys), np.array(one_group, dtype=bool)
    task = KeyAtomTask(name, "regression" if name == "max_fragment" else "classification",
                       kept, y, groups)
    rng = np.random.RandomState(random_state)
    if task.task == "regression":
        return task.subset(np.sort(rng.permutation(len(y))[:max_molecules]))
    positives = np.flatnonzero(y == 1)
    positives = rng.choice(positives, min(len(positives), max_molecules // 2), replace=False)
    negatives = np.flatnonzero(y == 0)
    if name == "interaction":
        half = (len(positives) + 1) // 2
        near = rng.permutation(np.flatnonzero((y == 0) & one_group))[:half]
        far = rng.permutation(np.flatnonzero((y == 0) & ~one_group))[:len(positives) - len(near)]
        negatives = np.r_[near, far]
    else:
        negatives = rng.choice(negatives, min(len(negatives), len(positives)), replace=False)
    return task.subset(rng.permutation(np.r_[positives, negatives]))


def key_atom_hits(values: Sequence[np.ndarray | None],
                  key_groups: Sequence[Sequence[tuple[int, ...]]]) -> np.ndarray:
    """Whether, per molecule, every key group's highest-scoring atom outranks every atom
    outside the key groups (one group: the top atom is key; two: both groups come first).

    Parameters
    ----------
    values : list of ndarray or None
        Per molecule, a score per atom (e.g. atom contributions); None (a failed molecule)
        is a miss.
    key_groups : list of list of tuple of int
        Per molecule, the key groups (:attr:`KeyAtomTask.key_groups`, or
        ``[all atoms of every alert match]`` for :mod:`qsarmil.alerts`).

    Returns
    -------
    ndarray of bool
        False for a molecule without key groups.
    """
    if len(values) != len(key_groups):
        raise ValueError(f"{len(values)} attributions but {len(key_groups)} key-group lists")
    hits = []
    for v, groups in zip(values, key_groups):
        groups = [g for g in groups if len(g)]
        if v is None or not groups:
            hits.append(False)
            continue
        v = np.asarray(v, dtype=np.float64)
        outside = np.ones(len(v), dtype=bool)
        for g in groups:
            outside[list(g)] = False
        best_outside = v[outside].max() if outside.any() else -np.inf
        hits.append(all(v[list(g)].max() > best_outside for g in groups))
    return np.array(hits, dtype=bool)
