"""Seeded molecules for the scale benchmark: the bundled molecules, then BRICS recombinations.

The pool starts with every distinct bundled molecule (MoleculeACE's 30 sets, solubility,
FreeSolv, the ChEMBL sample), canonical SMILES, in a seeded order. Beyond it, new molecules are
built from the BRICS fragments of those molecules (``BRICSBuild`` made 28 products a second
here, too slow for 200 000): each round draws two or three fragments with a seeded generator,
joins them at BRICS-compatible ends (``BRICS.reactionDefs``), caps open ends with hydrogen, and
keeps the products that sanitise, are new, and look drug-like (10-40 heavy atoms, at most 5
rings). Two targets: Crippen logP plus Gaussian noise (sd 0.3), and a fragment-additive target
with an interaction term (the sum of the molecule's Crippen atom contributions, plus 1.5 when
it holds both an aromatic amine and a carboxylic acid).

    python benchmarks/scale_data.py 200000   # prints the count and the seconds it took
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import BRICS, Crippen

RDLogger.DisableLog("rdApp.*")

_AMINE = Chem.MolFromSmarts("[NX3;H2,H1;!$(NC=O)]c")
_ACID = Chem.MolFromSmarts("C(=O)[OX2H1,OX1-]")


def bundled_smiles() -> list[str]:
    """Every distinct bundled molecule, canonical, sorted (a fixed order before shuffling)."""
    from qsarmil.data import list_datasets, load_chembl_sample, load_dataset

    found = set()
    texts = [s for name in list_datasets() for s in load_dataset(name).smiles]
    for text in texts + list(load_chembl_sample()):
        mol = Chem.MolFromSmiles(text)
        if mol is not None:
            found.add(Chem.MolToSmiles(mol))
    return sorted(found)


def _drug_like(mol: Chem.Mol) -> bool:
    return 10 <= mol.GetNumHeavyAtoms() <= 40 and mol.GetRingInfo().NumRings() <= 5


def _compatible() -> dict[int, list[tuple[int, Chem.BondType]]]:
    """BRICS's bond rules: for each dummy label, the labels it may join and the bond type."""
    bonds = {"-": Chem.BondType.SINGLE, "=": Chem.BondType.DOUBLE}
    pairs: dict[int, list] = {}
    for group in BRICS.reactionDefs:
        for a, b, bond in group:
            a, b = int(a.rstrip("ab")), int(b.rstrip("ab"))  # "7a"/"7b": the two ends of 7=7
            pairs.setdefault(a, []).append((b, bonds[bond]))
            pairs.setdefault(b, []).append((a, bonds[bond]))
    return pairs


def _join(a: Chem.Mol, b: Chem.Mol, rng: np.random.Generator, rules) -> Chem.Mol | None:
    """``a`` and ``b`` joined at one pair of BRICS-compatible dummy atoms, or None."""
    combined = Chem.RWMol(Chem.CombineMols(a, b))
    offset = a.GetNumAtoms()
    dummies_a = [x.GetIdx() for x in a.GetAtoms() if x.GetAtomicNum() == 0]
    dummies_b = [x.GetIdx() + offset for x in b.GetAtoms() if x.GetAtomicNum() == 0]
    options = [(i, j, bond) for i in dummies_a for j in dummies_b
               for label, bond in rules.get(combined.GetAtomWithIdx(i).GetIsotope(), ())
               if combined.GetAtomWithIdx(j).GetIsotope() == label]
    if not options:
        return None
    i, j, bond = options[rng.integers(len(options))]
    (ni,) = [n.GetIdx() for n in combined.GetAtomWithIdx(i).GetNeighbors()]
    (nj,) = [n.GetIdx() for n in combined.GetAtomWithIdx(j).GetNeighbors()]
    combined.AddBond(ni, nj, bond)
    for index in sorted((i, j), reverse=True):
        combined.RemoveAtom(index)
    return combined.GetMol()


def _capped(mol: Chem.Mol) -> Chem.Mol | None:
    """``mol`` with its open BRICS ends made hydrogens, sanitised, or None if it fails."""
    mol = Chem.RWMol(mol)
    for atom in mol.GetAtoms():
        if atom.GetAtomicNum() == 0:
            atom.SetAtomicNum(1)
            atom.SetIsotope(0)
    try:
        return Chem.RemoveHs(mol.GetMol())  # sanitises
    except Exception:  # noqa: BLE001 - RDKit raises several kinds for bad products
        return None


def _recombined(base: list[str], rng: np.random.Generator) -> Iterator[str]:
    """Endless seeded BRICS recombinations: two or three fragments of ``base`` joined at
    compatible BRICS ends (BRICS's own bond rules), open ends capped with hydrogen."""
    fragments = sorted({f for s in base[:3000] for f in BRICS.BRICSDecompose(Chem.MolFromSmiles(s))})
    fragment_mols = [m for m in (Chem.MolFromSmiles(f) for f in fragments) if m is not None]
    rules = _compatible()
    while True:
        mol = fragment_mols[rng.integers(len(fragment_mols))]
        for _ in range(rng.integers(1, 3)):
            joined = _join(mol, fragment_mols[rng.integers(len(fragment_mols))], rng, rules)
            mol = mol if joined is None else joined
        product = _capped(mol)
        if product is not None and _drug_like(product):
            yield Chem.MolToSmiles(product)


def molecules(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct canonical SMILES: the bundled molecules shuffled, then recombinations."""
    rng = np.random.default_rng(seed)
    base = bundled_smiles()
    rng.shuffle(base)
    out = base[:n]
    seen = set(out)
    if len(out) < n:
        for smiles in _recombined(base, rng):
            if smiles not in seen:
                seen.add(smiles)
                out.append(smiles)
                if len(out) == n:
                    break
    return out


def logp_target(smiles: list[str], seed: int = 0) -> np.ndarray:
    """Crippen logP plus Gaussian noise of sd 0.3."""
    rng = np.random.default_rng(seed)
    logp = np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles])
    return logp + rng.normal(0.0, 0.3, len(smiles))


def interaction_target(smiles: list[str]) -> np.ndarray:
    """Sum of the Crippen contributions plus 1.5 where an aromatic amine meets an acid."""
    values = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        additive = sum(c[0] for c in Crippen.rdMolDescriptors._CalcCrippenContribs(mol))
        both = mol.HasSubstructMatch(_AMINE) and mol.HasSubstructMatch(_ACID)
        values.append(additive + 1.5 * both)
    return np.array(values)


def cached_molecules(n: int, seed: int = 0) -> list[str]:
    """:func:`molecules`, kept in ``benchmarks/.cache`` (the same seed gives the same list)."""
    from pathlib import Path

    path = Path(__file__).parent / ".cache" / f"molecules_{n}_{seed}.txt"
    if path.exists():
        return path.read_text().split("\n")
    found = molecules(n, seed)
    path.parent.mkdir(exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text("\n".join(found))
    partial.replace(path)
    return found


if __name__ == "__main__":
    start = time.perf_counter()
    found = cached_molecules(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
    print(len(found), f"{time.perf_counter() - start:.1f} s")
