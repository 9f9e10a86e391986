"""ETKDG (v3) conformer ensembles with seeding, RMSD pruning, optimisation and a time limit."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem, rdDistGeom

__all__ = ["ConformerError", "ConformerSettings", "TimeLimit", "TimeLimitError", "generate_conformers"]


class ConformerError(RuntimeError):
    """No usable conformer within the settings (embedding failed or hit the time limit)."""


class TimeLimitError(RuntimeError):
    """A molecule's work went past its time limit."""


class TimeLimit:
    """A per-molecule time budget, checked between steps (an RDKit call cannot be interrupted).

    Parameters
    ----------
    seconds : float
        The budget; it starts counting when the object is made.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.perf_counter()

    def left(self) -> float:
        """Seconds left (negative once the budget is spent)."""
        return self.seconds - (time.perf_counter() - self.start)

    def expired(self) -> bool:
        return self.left() <= 0

    def check(self, what: str) -> None:
        """Raise :class:`TimeLimitError` saying ``what`` was under way once the budget is spent."""
        if self.expired():
            raise TimeLimitError(f"went past the time limit ({self.seconds:g} s) while {what}")


@dataclass(frozen=True)
class ConformerSettings:
    """How to build a conformer ensemble.

    Attributes
    ----------
    n_conformers : int
        Conformers to embed (before pruning and the energy window).
    random_seed : int
    prune_rms : float
        Heavy-atom RMSD (Å) below which two conformers count as one; 0 keeps all.
    optimize : {"mmff", "uff", None}
        Force-field optimisation after embedding (MMFF falls back to UFF where MMFF has no
        parameters).
    energy_window : float or None
        Keep conformers within this many kcal/mol of the lowest (needs ``optimize``).
    time_limit : float
        Seconds per molecule; a molecule that does not embed in time is a failure.
    random_coords_fallback : bool
        Retry with random starting coordinates when ETKDG embeds nothing.
    """

    n_conformers: int = 10
    random_seed: int = 42
    prune_rms: float = 0.5
    optimize: str | None = "mmff"
    energy_window: float | None = None
    time_limit: float = 30.0
    random_coords_fallback: bool = True


def _embed(mol: Chem.Mol, s: ConformerSettings, random_coords: bool, seconds: float) -> list[int]:
    params = rdDistGeom.ETKDGv3()
    params.randomSeed = s.random_seed
    params.pruneRmsThresh = s.prune_rms
    params.useRandomCoords = random_coords
    params.timeout = max(1, int(np.ceil(seconds)))
    params.numThreads = 1
    return list(rdDistGeom.EmbedMultipleConfs(mol, numConfs=s.n_conformers, params=params))


def _optimize(mol: Chem.Mol, method: str) -> np.ndarray:
    if method == "mmff" and AllChem.MMFFHasAllMoleculeParams(mol):
        results = AllChem.MMFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=500)
    else:
        results = AllChem.UFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=500)
    return np.array([energy for _, energy in results])


def generate_conformers(mol: Chem.Mol, settings: ConformerSettings | None = None,
                        budget: TimeLimit | None = None) -> tuple[Chem.Mol, np.ndarray | None]:
    """Embed a conformer ensemble.

    ``budget`` is the molecule's running :class:`TimeLimit` (e.g. started before parsing);
    default: a new one of ``settings.time_limit`` seconds.

    Returns
    -------
    mol : Mol with explicit hydrogens and the kept conformers
    energies : ndarray (kcal/mol) of the kept conformers, or None without optimisation

    Raises
    ------
    ConformerError
        When no conformer can be embedded, or the time limit is reached.
    """
    s = settings or ConformerSettings()
    if s.optimize not in ("mmff", "uff", None):
        raise ValueError(f"optimize must be 'mmff', 'uff' or None, got {s.optimize!r}")
    budget = budget or TimeLimit(s.time_limit)
    mol = Chem.AddHs(mol)
    ids = _embed(mol, s, False, budget.left())
    if not ids and s.random_coords_fallback and not budget.expired():
        ids = _embed(mol, s, True, budget.left())
    if budget.expired():
        raise ConformerError(f"conformer embedding hit the time limit ({s.time_limit:g} s) "
                             f"with {len(ids)} of {s.n_conformers} conformers")
    if not ids:
        raise ConformerError("ETKDG could not embed any conformer")
    energies = None
    if s.optimize:
        energies = _optimize(mol, s.optimize)
        if budget.expired():
            raise ConformerError(f"conformer optimisation exceeded the time limit ({s.time_limit:g} s)")
        if s.energy_window is not None:
            keep = energies <= energies.min() + s.energy_window
            for conf_id, kept in zip(list(ids), keep):
                if not kept:
                    mol.RemoveConformer(conf_id)
            energies = energies[keep]
    # Renumber conformers 0..k-1 so ids are stable for explanations.
    for new_id, conf in enumerate(mol.GetConformers()):
        conf.SetId(new_id)
    return mol, energies
