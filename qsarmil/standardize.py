"""Parsing and standardisation: every failure is a reported record, never a silent drop."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rdkit import Chem, RDLogger
from rdkit.Chem.MolStandardize import rdMolStandardize

__all__ = ["MoleculeError", "Failure", "parse_molecule", "parse_molecules", "standardize_mol"]


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
        Keep the largest organic fragment (drops counter-ions, solvents, metal salts).
    neutralize : bool
        Neutralise charges where a neutral form exists.
    canonical_tautomer : bool
        Replace by RDKit's canonical tautomer (off by default: it can change the chemistry).
    """
    mol = rdMolStandardize.Cleanup(mol)
    if largest_fragment:
        mol = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)
    if neutralize:
        mol = rdMolStandardize.Uncharger().uncharge(mol)
    if canonical_tautomer:
        mol = rdMolStandardize.TautomerEnumerator().Canonicalize(mol)
    return mol


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
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(item.strip())
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol is None:
        raise _error(index, text, "RDKit cannot parse this SMILES")
    return mol


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
