"""Which atoms each atom's descriptor features depend on.

An in-parent count feature held at one atom describes more than that atom. A Morgan environment
of radius r reads the atoms within r bonds of its centre, and their invariants (degree,
hydrogens) read one bond further; an atom pair reads its two ends (with their heavy neighbours)
and their distance, which any atom on a shortest path between them sets; a per-atom
physicochemical value (Crippen, TPSA) depends on the atom's type, which atoms up to two bonds
away set (Crippen types an acid's hydroxyl hydrogen, folded into its oxygen, by the C=O).
Where two analogues hold a feature in different counts at a common atom, the difference comes
from the atoms it depends on. :func:`feature_occurrences` lists each atom's occurrences of
each bag column, :func:`depends_on` the atoms one occurrence depends on, in its own molecule or
at the matched atoms of another.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from .descriptors import PHYSCHEM_COLUMNS, _atom_pairs, _morgan

__all__ = ["Occurrence", "depends_on", "feature_occurrences"]

# ("morgan", centre, radius) | ("pair", end, end) | ("atom", atom, 0)
Occurrence = tuple[str, int, int]


def feature_occurrences(mol: Chem.Mol, kinds: Sequence[str], radius: int, size: int
                        ) -> list[dict[int, list[Occurrence]]]:
    """Per heavy atom of ``mol``: for each bag column it holds, its occurrences of it.

    Columns are laid out as :func:`~qsarmil.descriptors.describe_fragments_sparse` lays them
    out for ``kinds`` (in-parent, atom-summable sets): a Morgan environment is held at its
    centre, an atom pair half at each end, a per-atom value at its atom.
    """
    held: list[dict[int, list[Occurrence]]] = [{} for _ in range(mol.GetNumAtoms())]
    offset = 0
    for kind in kinds:
        if kind == "morgan_atoms":
            for bit, hits in _bit_info(_morgan(radius, size, True), mol).items():
                for centre, r in hits:
                    held[centre].setdefault(offset + bit, []).append(("morgan", centre, r))
            offset += size
        elif kind == "atompair_parent":
            for bit, hits in _bit_info(_atom_pairs(size), mol).items():
                for i, j in hits:
                    for end in (i, j):
                        held[end].setdefault(offset + bit, []).append(("pair", i, j))
            offset += size
        elif kind == "physchem_atoms":
            for atom, columns in enumerate(held):
                for column in range(len(PHYSCHEM_COLUMNS)):
                    columns[offset + column] = [("atom", atom, 0)]
            offset += len(PHYSCHEM_COLUMNS)
        else:
            raise ValueError(f"{kind!r} features are not held at atoms")
    return held


def depends_on(occurrence: Occurrence, distances: np.ndarray, mapping: dict[int, int] | None = None
               ) -> np.ndarray:
    """The atoms ``occurrence`` depends on (indices), read in the molecule whose topological
    ``distances`` are given; ``mapping`` carries its atoms there first (e.g. from one analogue
    to the matched atoms of the other). An atom the mapping lacks: an empty result."""
    kind, i, j = occurrence
    if mapping is not None:  # (j is a radius, not an atom, but for pairs)
        if i not in mapping or (kind == "pair" and j not in mapping):
            return np.array([], dtype=np.int64)
        i, j = mapping[i], (mapping[j] if kind == "pair" else j)
    if kind == "morgan":
        return np.flatnonzero(distances[i] <= j + 1)
    if kind == "atom":
        return np.flatnonzero(distances[i] <= 2)
    on_path = distances[i] + distances[j] == distances[i, j]
    return np.flatnonzero(on_path | (distances[i] <= 1) | (distances[j] <= 1))


def _bit_info(generator, mol: Chem.Mol) -> dict:
    info = rdFingerprintGenerator.AdditionalOutput()
    info.AllocateBitInfoMap()
    generator.GetCountFingerprint(mol, additionalOutput=info)
    return info.GetBitInfoMap()
