"""Parsing and standardisation: every failure is a reported record, never a silent drop."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rdkit import Chem, RDLogger
from rdkit.Chem.MolStandardize import rdMolStandardize

__all__ = ["MoleculeError", "Failure", "parse_molecule", "parse_molecules", "standardize_mol"]


class MoleculeError(ValueError):
    """A molecule cannot be parsed or processed; the message names its input row."""


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


def parse_molecule(item, index: int = 0, standardize: bool = False) -> Chem.Mol:
    """Parse one SMILES string (or copy a Mol) and optionally standardise it.

    Raises
    ------
    MoleculeError
        Naming ``index`` and the input when parsing or standardisation fails.
    """
    text = _describe(item) if item is not None else "None"
    if isinstance(item, Chem.Mol):
        mol = Chem.Mol(item)
    elif isinstance(item, str):
        if not item.strip():
            raise MoleculeError(f"row {index} ({text!r}): empty SMILES")
        RDLogger.DisableLog("rdApp.*")
        try:
            mol = Chem.MolFromSmiles(item.strip())
        finally:
            RDLogger.EnableLog("rdApp.*")
        if mol is None:
            raise MoleculeError(f"row {index} ({text!r}): RDKit cannot parse this SMILES")
    else:
        raise MoleculeError(f"row {index} ({text!r}): expected a SMILES string or an RDKit Mol, "
                            f"got {type(item).__name__}")
    if mol.GetNumAtoms() == 0:
        raise MoleculeError(f"row {index} ({text!r}): molecule has no atoms")
    if standardize:
        try:
            mol = standardize_mol(mol)
        except Exception as exc:  # RDKit raises several exception types here
            raise MoleculeError(f"row {index} ({text!r}): standardisation failed ({exc})") from None
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
            failures.append(Failure(i, _describe(item) if item is not None else "None",
                                    str(exc).split("): ", 1)[-1]))
    return mols, failures
