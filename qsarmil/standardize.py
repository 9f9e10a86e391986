"""Parsing and standardisation: every failure is a reported record, never a silent drop."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from rdkit import Chem, rdBase
from rdkit.Chem.MolStandardize import rdMolStandardize
from rdkit.Chem.rdMolDescriptors import CalcMolFormula

__all__ = ["MoleculeError", "Failure", "parse_molecule", "parse_molecules", "standardize_mol",
           "strip_salts", "neutralize", "prepare_molecule", "prepared_molecules"]


class MoleculeError(ValueError):
    """A molecule cannot be parsed or processed; the message names its input row.

    ``reason`` is the message without the row prefix (what a :class:`Failure` records).
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason if reason is not None else message


def _error(index: int, text: str, reason: str) -> MoleculeError:
    shown = text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"
    return MoleculeError(f"row {index} ({shown!r}): {reason}", reason)


@dataclass(frozen=True)
class Failure:
    """One molecule that could not be processed.

    Attributes
    ----------
    index : int
        Row of the molecule in the input.
    input : str
        The input as given (SMILES, or the Mol's SMILES/name).
    reason : str
        What went wrong.
    """

    index: int
    input: str
    reason: str

    def as_error(self) -> MoleculeError:
        return MoleculeError(f"row {self.index} ({self.input!r}): {self.reason}")


def _describe(item) -> str:
    if isinstance(item, Chem.Mol):
        return item.GetProp("_Name") if item.HasProp("_Name") else Chem.MolToSmiles(item)
    return str(item)


# Non-metals (and the dummy atom 0); every other element counts as a metal.
_NONMETALS = frozenset({0, 1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 33, 34, 35, 36, 52, 53,
                        54, 85, 86})
_SALT_METALS = frozenset({3, 4, 11, 12, 19, 20, 37, 38, 55, 56})  # groups 1 and 2: Li, Na, Mg, ...


# Atom queries run in RDKit's C++: scanning atoms in Python took a fifth of the time to
# featurise a molecule whole.
_ANY_METAL = Chem.MolFromSmarts("[" + ";".join(f"!#{z}" for z in sorted(_NONMETALS)) + "]")
_CHARGED = Chem.MolFromSmarts("[!+0]")


def _bonded_metals(mol: Chem.Mol, salt_metals: bool) -> bool:
    """Whether a metal of groups 1-2 (``salt_metals``) or any other metal is bonded to anything."""
    if not mol.HasSubstructMatch(_ANY_METAL):
        return False
    return any(atom.GetDegree() > 0 and atom.GetAtomicNum() not in _NONMETALS
               and (atom.GetAtomicNum() in _SALT_METALS) == salt_metals
               for atom in mol.GetAtoms())


def strip_salts(mol: Chem.Mol) -> tuple[Chem.Mol, str]:
    """The parent of a salt or mixture: its largest organic fragment, and what was removed.

    Rules, in order: a sodium, potassium, magnesium, ... drawn bonded (``CC(=O)O[Na]``) is
    disconnected first (RDKit's ``MetalDisconnector``). A molecule of one fragment, one with any
    other metal bonded to something (a complex such as cisplatin, ``N.N.Cl[Pt]Cl``) and one with
    no carbon-containing fragment (``[Na+].[Cl-]``) are kept whole. Otherwise RDKit's
    ``FragmentRemover`` drops known counter-ions and solvents and ``LargestFragmentChooser``
    keeps the largest fragment that contains carbon.

    Returns
    -------
    mol : rdkit Mol
        The kept molecule (charges untouched; see :func:`neutralize`).
    stripped : str
        Formulas of the removed fragments, e.g. ``"HCl"`` or ``"Na+"``, joined by ``", "``;
        empty when nothing was removed.
    """
    if _bonded_metals(mol, salt_metals=True) and not _bonded_metals(mol, salt_metals=False):
        mol = rdMolStandardize.MetalDisconnector().Disconnect(mol)
    if len(Chem.GetMolFrags(mol)) == 1:  # atom indices only: copying the molecule costs more
        return mol, ""
    fragments = Chem.GetMolFrags(mol, asMols=True)
    if _bonded_metals(mol, salt_metals=False) or not any(_has_carbon(f) for f in fragments):
        return mol, ""
    remaining = rdMolStandardize.FragmentRemover(skip_if_all_match=True).remove(mol)
    kept = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(remaining)
    key, found, stripped = Chem.MolToSmiles(kept), False, []
    for fragment in fragments:
        if not found and Chem.MolToSmiles(fragment) == key:
            found = True
        else:
            stripped.append(CalcMolFormula(fragment))
    return kept, ", ".join(stripped)


def _has_carbon(mol: Chem.Mol) -> bool:
    return any(atom.GetAtomicNum() == 6 for atom in mol.GetAtoms())


def neutralize(mol: Chem.Mol) -> Chem.Mol:
    """Neutralise charges where a neutral form exists (RDKit's ``Uncharger``); a molecule
    without formal charges is returned as it is."""
    if not mol.HasSubstructMatch(_CHARGED):
        return mol
    return rdMolStandardize.Uncharger().uncharge(mol)


def prepare_molecule(mol: Chem.Mol, salts: bool = True, standardize: bool = False
                     ) -> tuple[Chem.Mol, str]:
    """The molecule a model sees, and the formulas of what was stripped from it.

    Parameters
    ----------
    mol : rdkit Mol
    salts : bool
        Keep the parent (:func:`strip_salts`), neutralised (:func:`neutralize`).
    standardize : bool
        Full :func:`standardize_mol` (RDKit's cleanup too); implies ``salts``.
    """
    if not (salts or standardize):
        return mol, ""
    with rdBase.BlockLogs():  # rdMolStandardize narrates every step
        if standardize:
            mol = rdMolStandardize.Cleanup(mol)
        mol, stripped = strip_salts(mol)
        return neutralize(mol), stripped


def prepared_molecules(smiles: Iterable[str]) -> Iterator[tuple[str, Chem.Mol]]:
    """Each SMILES that RDKit parses, with the molecule a default bagger sees
    (:func:`prepare_molecule`: salts stripped, neutralised); the others are skipped quietly.
    For labelling synthetic tasks, whose atom indices must match the bags'."""
    with rdBase.BlockLogs():
        for smi in smiles:
            mol = Chem.MolFromSmiles(smi)
            if mol is not None:
                yield smi, prepare_molecule(mol)[0]


def standardize_mol(
    mol: Chem.Mol,
    largest_fragment: bool = True,
    neutralize: bool = True,
    canonical_tautomer: bool = False,
) -> Chem.Mol:
    """Clean up a molecule with RDKit's ``rdMolStandardize``.

    Parameters
    ----------
    mol : rdkit Mol
    largest_fragment : bool
        Keep the parent of a salt or mixture (see :func:`strip_salts`: counter-ions and
        solvents dropped, metal complexes kept whole).
    neutralize : bool
        Neutralise charges where a neutral form exists.
    canonical_tautomer : bool
        Replace by RDKit's canonical tautomer (off by default: it can change the chemistry).
    """
    with rdBase.BlockLogs():  # rdMolStandardize narrates every step
        mol = rdMolStandardize.Cleanup(mol)
        if largest_fragment:
            mol, _ = strip_salts(mol)
        if neutralize:
            mol = _neutralize(mol)
        if canonical_tautomer:
            mol = rdMolStandardize.TautomerEnumerator().Canonicalize(mol)
        return mol


_neutralize = neutralize  # standardize_mol's parameter shadows the function's name


def parse_molecule(item, index: int = 0, standardize: bool = False,
                   max_smiles_length: int | None = None, max_heavy_atoms: int | None = None
                   ) -> Chem.Mol:
    """Parse one SMILES string (or copy a Mol) and optionally standardise it.

    Parameters
    ----------
    item : str or rdkit Mol
    index : int
        Input row, for messages.
    standardize : bool
        Apply :func:`standardize_mol`.
    max_smiles_length : int, optional
        Longer SMILES are refused before RDKit sees them.
    max_heavy_atoms : int, optional
        Molecules with more heavy atoms are refused (counted before standardisation).

    Raises
    ------
    MoleculeError
        Naming ``index`` and the input when parsing or standardisation fails or a limit is
        exceeded.
    """
    text = _describe(item) if item is not None else "None"
    if isinstance(item, Chem.Mol):
        mol = Chem.Mol(item)
        try:  # a Mol built with sanitize=False: RDKit's own checks, as for a parsed SMILES
            with rdBase.BlockLogs():
                Chem.SanitizeMol(mol)
        except Exception as exc:  # RDKit raises several exception types here
            raise _error(index, text, f"RDKit cannot sanitize this molecule ({exc})") from None
    elif isinstance(item, str):
        mol = _parse_smiles(item, index, text, max_smiles_length)
    else:
        raise _error(index, text, f"expected a SMILES string or an RDKit Mol, got {type(item).__name__}")
    if mol.GetNumAtoms() == 0:
        raise _error(index, text, "molecule has no atoms")
    heavy = mol.GetNumHeavyAtoms()
    if max_heavy_atoms is not None and heavy > max_heavy_atoms:
        raise _error(index, text, f"{heavy} heavy atoms, over max_heavy_atoms={max_heavy_atoms}")
    if standardize:
        try:
            mol = standardize_mol(mol)
        except Exception as exc:  # RDKit raises several exception types here
            raise _error(index, text, f"standardisation failed ({exc})") from None
    return mol


def _parse_smiles(item: str, index: int, text: str, max_length: int | None) -> Chem.Mol:
    if max_length is not None and len(item) > max_length:
        raise _error(index, text, f"SMILES of {len(item)} characters, over max_smiles_length={max_length}")
    if not item.strip():
        raise _error(index, text, "empty SMILES")
    inner = _INNER_SPACE.search(item.strip())
    if inner:  # RDKit would read what follows as the molecule's name and score a fragment
        what = _SPACE_NAMES.get(inner.group(), f"whitespace U+{ord(inner.group()):04X}")
        raise _error(index, text, f"the SMILES holds {what} at position {inner.start() + 1}; RDKit "
                     f"would read only {item.strip()[:inner.start()][:40]!r} and take the rest as a "
                     "name: put the name in a column of its own")
    with rdBase.BlockLogs(), rdBase.CaptureErrorLog() as log:  # RDKit's words, off the console
        mol = Chem.MolFromSmiles(item.strip())
    if mol is None:
        details = rdkit_reason(log.messages, item.strip())
        raise _error(index, text, "RDKit cannot parse this SMILES" + (f": {details}" if details else ""))
    return mol


_INNER_SPACE = re.compile(r"\s")
_SPACE_NAMES = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a carriage return"}
_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ")
_FOR_INPUT = re.compile(r" for input: '.*'$")
_MAX_REASON = 200


def rdkit_reason(messages: str, smiles: str = "") -> str:
    """RDKit's error log for one parse as one line: timestamps, prefixes, the echoed SMILES and
    its caret marker left out, e.g. ``"unclosed ring"`` or ``"Explicit valence for atom # 1 N,
    5, is greater than permitted"``."""
    kept = []
    for line in messages.splitlines():
        line = _TIMESTAMP.sub("", line).removeprefix("SMILES Parse Error: ").strip()
        line = _FOR_INPUT.sub("", line).rstrip(":")
        if (not line or set(line) <= set("~^ ") or line in smiles
                or line.startswith("Failed parsing")):
            continue
        kept.append(line if len(line) <= _MAX_REASON else line[:_MAX_REASON] + "...")
    return "; ".join(dict.fromkeys(kept))


def parse_molecules(
    items: Sequence | Iterable, standardize: bool = False, strict: bool = False
) -> tuple[list[Chem.Mol | None], list[Failure]]:
    """Parse many molecules; failures are collected, not raised (unless ``strict``).

    Returns
    -------
    mols : list of Mol or None
        One entry per input; None where the molecule failed.
    failures : list of Failure
    """
    mols, failures = [], []
    for i, item in enumerate(items):
        try:
            mols.append(parse_molecule(item, i, standardize))
        except MoleculeError as exc:
            if strict:
                raise
            mols.append(None)
            failures.append(Failure(i, _describe(item) if item is not None else "None", exc.reason))
    return mols, failures
