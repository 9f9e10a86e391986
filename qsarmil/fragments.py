"""BRICS and RECAP fragments that remember which parent atoms they cover.

Every cut bond is broken once; each side gets a dummy atom (``*``, isotope = BRICS label for
BRICS cuts, 0 for RECAP) at the cut point. Repeated fragments stay separate instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from rdkit import Chem
from rdkit.Chem import BRICS, AllChem, Recap

__all__ = ["Fragment", "atom_partition", "fragment_molecule", "brics_fragments", "recap_fragments",
           "FRAGMENTERS"]


@dataclass(frozen=True)
class Fragment:
    """One fragment instance.

    Attributes
    ----------
    atoms : tuple of int
        Indices of the parent molecule's atoms in this fragment (dummies excluded).
    smiles : str
        Fragment SMILES with ``*`` at cut points.
    mol : rdkit Mol
        The fragment, dummy atoms included.
    """

    atoms: tuple[int, ...]
    smiles: str
    mol: Chem.Mol


def _split(mol: Chem.Mol, bonds: list[int], labels: list[tuple[int, int]] | None) -> list[Fragment]:
    n_atoms = mol.GetNumAtoms()
    if not bonds:
        return [Fragment(tuple(range(n_atoms)), Chem.MolToSmiles(mol), Chem.Mol(mol))]
    broken = Chem.FragmentOnBonds(mol, bonds, addDummies=True, dummyLabels=labels)
    mapping: list[tuple[int, ...]] = []
    pieces = Chem.GetMolFrags(broken, asMols=True, sanitizeFrags=False, fragsMolAtomMapping=mapping)
    fragments = []
    for piece, atoms in zip(pieces, mapping):
        parent_atoms = tuple(sorted(a for a in atoms if a < n_atoms))  # dummies come after
        fragments.append(Fragment(parent_atoms, Chem.MolToSmiles(piece), piece))
    return fragments


def _brics_cuts(mol: Chem.Mol) -> tuple[list[int], list[tuple[int, int]]]:
    """Every BRICS bond (Degen et al., 2008) and its dummy labels."""
    bonds, labels = [], []
    for (i, j), (label_i, label_j) in BRICS.FindBRICSBonds(mol):
        bond = mol.GetBondBetweenAtoms(i, j)
        bonds.append(bond.GetIdx())
        # FragmentOnBonds labels (dummy replacing begin atom, dummy replacing end atom); a
        # dummy carries the BRICS type of the atom it stays attached to.
        pair = (int(label_j), int(label_i)) if bond.GetBeginAtomIdx() == i else (int(label_i), int(label_j))
        labels.append(pair)
    return bonds, labels


def brics_fragments(mol: Chem.Mol) -> list[Fragment]:
    """Break every BRICS bond (Degen et al., 2008)."""
    return _split(mol, *_brics_cuts(mol))


@lru_cache(maxsize=1)
def _recap_patterns() -> list[tuple[Chem.Mol, tuple[int, int]]]:
    """RECAP rules as (reactant pattern, atoms of the bond it breaks), from RDKit's own list."""
    patterns = []
    for smarts in Recap.reactionDefs:
        rxn = AllChem.ReactionFromSmarts(smarts)
        template = Chem.Mol(rxn.GetReactantTemplate(0))  # own copy: rxn is freed
        side = {}
        for p, product in enumerate(rxn.GetProducts()):
            for atom in product.GetAtoms():
                if atom.GetAtomMapNum():
                    side[atom.GetAtomMapNum()] = p
        for bond in template.GetBonds():
            a, b = bond.GetBeginAtom(), bond.GetEndAtom()
            ma, mb = a.GetAtomMapNum(), b.GetAtomMapNum()
            if ma in side and mb in side and side[ma] != side[mb]:
                patterns.append((template, (a.GetIdx(), b.GetIdx())))
    return patterns


def _recap_cuts(mol: Chem.Mol) -> tuple[list[int], list[tuple[int, int]]]:
    """Every bond that a RECAP rule (Lewell et al., 1998) cleaves, with unlabelled dummies."""
    bonds = set()
    for template, (ia, ib) in _recap_patterns():
        for match in mol.GetSubstructMatches(template, uniquify=False):
            bond = mol.GetBondBetweenAtoms(match[ia], match[ib])
            if bond is not None and not bond.IsInRing():
                bonds.add(bond.GetIdx())
    return sorted(bonds), [(0, 0)] * len(bonds)


def recap_fragments(mol: Chem.Mol) -> list[Fragment]:
    """Break every bond that a RECAP rule (Lewell et al., 1998) cleaves."""
    return _split(mol, *_recap_cuts(mol))


FRAGMENTERS = {"brics": brics_fragments, "recap": recap_fragments}
_CUTS = {"brics": _brics_cuts, "recap": _recap_cuts}


def atom_partition(mol: Chem.Mol, method: str = "brics") -> list[tuple[int, ...]]:
    """The parent atoms of each fragment :func:`fragment_molecule` makes (whole molecule not
    included), found from the same cuts without building the fragments (several times faster).
    """
    if method not in _CUTS:
        raise ValueError(f"unknown fragmentation {method!r}; choose one of {sorted(_CUTS)}")
    bonds, _ = _CUTS[method](mol)
    if not bonds:
        return [tuple(range(mol.GetNumAtoms()))]
    broken = Chem.FragmentOnBonds(mol, bonds, addDummies=False)
    return [tuple(sorted(atoms)) for atoms in Chem.GetMolFrags(broken, sanitizeFrags=False)]


def fragment_molecule(mol: Chem.Mol, method: str = "brics", include_whole: bool = False
                      ) -> list[Fragment]:
    """Fragments of ``mol`` by ``method`` ("brics" or "recap"); optionally the whole molecule too.

    A molecule with no breakable bond is a one-fragment bag of itself.
    """
    if method not in FRAGMENTERS:
        raise ValueError(f"unknown fragmentation {method!r}; choose one of {sorted(FRAGMENTERS)}")
    fragments = FRAGMENTERS[method](mol)
    if include_whole and len(fragments) > 1:
        fragments.append(Fragment(tuple(range(mol.GetNumAtoms())), Chem.MolToSmiles(mol),
                                  Chem.Mol(mol)))
    return fragments
