"""Column rules of the tables ``qsarmil`` reads and writes: the names of the columns we add
(``prediction``, ``status``, ``error``, the explanation and picture columns), how they avoid the
input's own names, and how the SMILES and other named columns are found. Shared by the command
line and :mod:`qsarmil.frames`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .cli_errors import CommandError
from .io import DEFAULT_LIMITS, Limits, Row

OUR_COLUMNS = ("prediction", "status", "error")
EXPLAIN_COLUMNS = ("top_fragment", "top_contribution", "fragments")
PICTURE_COLUMN = "picture"
# What qsarmil.pairs.compare_frame and `predict --pairs` add per pair of analogues.
PAIR_COLUMNS = ["prediction_a", "prediction_b", "predicted_difference", "changed_part",
                "context_part", "measured_difference", "common_atoms", "changed_atoms_a",
                "changed_atoms_b", "atom_level", "split", "charge", "status", "error"]
# Where the pair split draws a share held at a common atom (qsarmil.attribution), as the charge
# column and `predict --charge` name it.
CHARGES = ("change", "holder")
# Looked for, ignoring case, when --smiles-col is not given; the first name present wins.
SMILES_NAMES = ("smiles", "canonical_smiles", "isomeric_smiles", "mol", "smi")
_PREFIX = "qsarmil_"
MAX_OUR_CHARS = 2000  # the most one of our text cells (error, fragments) holds
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def added_columns(header: Sequence[str], names: Sequence[str] = OUR_COLUMNS) -> list[str]:
    """Our column names, each prefixed with ``qsarmil_`` until no input column has it.

    Names are compared ignoring case and surrounding spaces, so ``Prediction`` also clashes.
    """
    taken = {h.strip().casefold() for h in header}
    out = []
    for name in names:
        while name.casefold() in taken:
            name = _PREFIX + name
        taken.add(name.casefold())
        out.append(name)
    return out


def find_column(header: Sequence[str], name: str, path: str) -> int:
    """Index of the column ``name`` (exact, else the one column equal ignoring case); a clear
    error listing the columns if there is none."""
    hits = [i for i, h in enumerate(header) if h == name]
    if not hits:
        hits = [i for i, h in enumerate(header) if h.strip().casefold() == name.strip().casefold()]
    if not hits:
        raise CommandError(f"{path}: no column {name!r} (columns: {list(header)})")
    if len(hits) > 1:
        raise CommandError(f"{path}: {len(hits)} columns are named {name!r}; rename all but one")
    return hits[0]


def smiles_candidates(header: Sequence) -> list[int]:
    """Positions of the columns named like the first of :data:`SMILES_NAMES` that the header has
    (ignoring case and surrounding spaces); [] when there is none."""
    folded = [str(h).strip().casefold() for h in header]
    for name in SMILES_NAMES:
        hits = [i for i, h in enumerate(folded) if h == name]
        if hits:
            return hits
    return []


def smiles_column(header: Sequence[str], requested: str | None, path: str) -> int:
    """The SMILES column: ``requested``, else the first of :data:`SMILES_NAMES` present."""
    if requested:
        return find_column(header, requested, path)
    hits = smiles_candidates(header)
    if len(hits) > 1:
        raise CommandError(f"{path}: {len(hits)} columns are named {header[hits[0]].strip().casefold()!r} "
                           f"(ignoring case: {[header[i] for i in hits]}); choose one with "
                           f"--smiles-col")
    if hits:
        return hits[0]
    raise CommandError(f"{path}: no SMILES column (looked for {', '.join(SMILES_NAMES)}, ignoring "
                       f"case; columns: {list(header)}); name it with --smiles-col")


def _cell_text(value) -> str:
    """A cell as the text a model reads (XLSX numbers as they print; an empty cell is "")."""
    return "" if value is None else str(value)


def _where(row: Row, id_at: int | None) -> str:
    """Where a row is, with its id where the user named an id column: ``line 7 (id ABC-1)``."""
    if id_at is None:
        return row.where
    return f"{row.where} (id {printable(_cell_text(row.cells[id_at]), 80)})"


def clip(text: str, limit: int = MAX_OUR_CHARS) -> str:
    """One of our text cells cut to ``limit`` characters, saying so (``... [cut: 40683
    characters]``)."""
    if len(text) <= limit:
        return text
    note = f" ... [cut: {len(text)} characters]"
    return text[:limit - len(note)] + note


def printable(text: str, limit: int = 200) -> str:
    """A cell's text safe for a terminal: control and bidirectional characters escaped
    (``\\x1b``), cut to ``limit`` characters."""
    shown = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return shown if len(shown) <= limit else shown[:limit] + f"... ({len(text)} characters)"


def input_limits(args) -> Limits:
    """The reading budget of a command: the defaults with its ``--limit NAME=VALUE`` settings."""
    return DEFAULT_LIMITS.with_settings(getattr(args, "limit", None) or [])
