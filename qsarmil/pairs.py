"""Two analogues side by side: what the change between them does to the prediction.

The two molecules are aligned on their maximum common substructure (RDKit FMCS, rings match
rings only and only whole rings), the atoms outside it are the change, and the predicted
difference splits exactly into the change's part and the context's:

    prediction(a) - prediction(b) = changed part + context part
    changed part = sum of a's changed atoms - sum of b's changed atoms
    context part = sum of a's common atoms  - sum of b's common atoms

Two ways to give the atoms their values (``split``):

- ``"pair"`` (the default where the model allows it): one molecule against the other
  (:func:`qsarmil.attribution.pair_atom_contributions`). The model's difference is split
  exactly over the descriptor features the two molecules hold in different counts; a
  feature's share goes to the molecule that holds more of it, on its atoms that hold it
  without a counterpart in the other. By default (``charge="change"``) a share held at a
  shared atom goes on to the changed atoms it depends on (its Morgan environment reaches them,
  or its atom pair's path runs through them), in its own molecule or, where it has none, in
  the other (phenol's para CH environment against cresol's methyl): the difference is drawn
  where it comes from, and the context part is what depends on no changed atom (often 0).
  ``charge="holder"`` leaves each share at the atom that holds it, so shared atoms next to the
  change carry their changed environments. Either way, a shared atom whose own features are
  the same in both gets 0.
- ``"molecules"``: each molecule's own atom contributions from the reference prediction
  (:mod:`qsarmil.attribution`), as ``explain`` draws them. The shared atoms carry values too,
  and these can move between the two molecules: the kernel compares whole molecules, so a
  change dilutes or strengthens the shared part's similarity to the training molecules. The
  reference cancels in the difference: it is spread over the common atoms (as many in both).
  Models that do not split over atoms spread each fragment's contribution evenly over its
  atoms (exact in sum, not per atom; ``atom_level`` says which).

On the activity cliffs of the 30 MoleculeACE sets (``benchmarks/attribution.py``) the pair split
puts the sign of the model's own predicted difference on the changed atoms more often than
each molecule's own contributions do; both figures are on the benchmarks page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem import rdDepictor, rdFMCS

from .attribution import (
    CHARGES,
    check_charge,
    pair_atom_contributions,
    pair_level_available,
    reference_prediction,
)
from .columns import PAIR_COLUMNS
from .explain import ColorScale, _draw_colorbar, _drawer, _finish, _prepare, colorbar_label

__all__ = ["PairComparison", "common_substructure", "compare", "compare_frame",
           "MCS_TIMEOUT", "CHANGED_COLOR", "SPLITS", "CHARGES"]

MCS_TIMEOUT = 10  # seconds for one FMCS search
CHANGED_COLOR = (0.93, 0.72, 0.13)  # the bonds of the change (gold), apart from the value scale
SPLITS = ("auto", "pair", "molecules")


def common_substructure(mol_a: Chem.Mol, mol_b: Chem.Mol, timeout: int = MCS_TIMEOUT,
                        partial: bool = False) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    """The atoms of ``mol_a`` and ``mol_b`` in their maximum common substructure, matched pairwise
    (``atoms_a[k]`` corresponds to ``atoms_b[k]``), and its SMARTS.

    RDKit FMCS with ``ringMatchesRingOnly`` and ``completeRingsOnly`` (a ring is common whole or
    not at all), elements and bond orders compared; empty when nothing is shared. A search
    that runs out of ``timeout`` seconds raises ValueError, unless ``partial`` (then the best
    common part found so far is returned).
    """
    result = rdFMCS.FindMCS([mol_a, mol_b], ringMatchesRingOnly=True, completeRingsOnly=True,
                            timeout=int(timeout))
    if result.canceled and not partial:  # a partial search: the common part (and so the split) is not known
        raise ValueError(f"the common-substructure search did not finish within {int(timeout)} s "
                         "(raise timeout=, or compare smaller molecules)")
    if not result.numAtoms:
        return (), (), ""
    query = Chem.MolFromSmarts(result.smartsString)
    match_a, match_b = mol_a.GetSubstructMatch(query), mol_b.GetSubstructMatch(query)
    if len(match_a) != len(match_b) or not match_a:
        return (), (), result.smartsString
    return tuple(match_a), tuple(match_b), result.smartsString


def _per_atom(e) -> tuple[np.ndarray, bool]:
    """Each heavy atom's contribution (from the intercept), and whether it is the model's own
    atom split (else each fragment's contribution spread evenly over its atoms)."""
    if e.atom_contributions is not None:
        return np.asarray(e.atom_contributions, dtype=np.float64), True
    if not e.has_signed or e.is_conformer_bag:
        raise ValueError("comparing needs signed contributions over fragments or atoms "
                         "(the default fragment models)")
    out = np.zeros(e.mol.GetNumAtoms())
    for atoms, value in zip(e.instances.atoms, e.instances.contribution):
        out[list(atoms)] += value / max(len(atoms), 1)
    return out, False


@dataclass
class PairComparison:
    """What the change from ``b`` to ``a`` does to the prediction.

    Attributes
    ----------
    smiles_a, smiles_b : str
    prediction_a, prediction_b : float
    predicted_difference : float
        ``prediction_a - prediction_b``, = ``changed_part + context_part`` exactly.
    changed_part, context_part : float
        The changed atoms' share and the common atoms' share of the difference.
    common_a, common_b : tuple of int
        Matched atoms of the common substructure (``common_a[k]`` is ``common_b[k]``).
    changed_a, changed_b : tuple of int
        Atoms outside it: the change.
    values_a, values_b : ndarray
        Per heavy atom, as drawn. ``split="pair"``: each atom's share of the difference, a
        positive value raising its own molecule against the other
        (``predicted_difference = values_a.sum() - values_b.sum()``). ``"molecules"``: each
        molecule's own contributions from ``baseline`` (the changed atoms' own values, the
        common atoms' less an equal share of ``baseline`` minus the model's intercept).
    split : {"pair", "molecules"}
        Which of the two (see the module docstring).
    charge : {"change", "holder"} or None
        Under ``split="pair"``, where shared atoms' shares went (see the module docstring);
        None under ``"molecules"``.
    baseline, baseline_name : float, str
        The reference each molecule is measured from under ``split="molecules"``; under
        ``"pair"`` each molecule is measured from the other (``baseline`` is then
        ``prediction_b``).
    measured_a, measured_b, measured_difference : float or None
        Measured values where given.
    atom_level : bool
        Whether the values are the model's exact atom split (else fragments spread evenly).
    mcs_smarts : str
    target_name, units : str
    """

    smiles_a: str
    smiles_b: str
    mol_a: Chem.Mol = field(repr=False)
    mol_b: Chem.Mol = field(repr=False)
    prediction_a: float
    prediction_b: float
    changed_part: float
    context_part: float
    common_a: tuple
    common_b: tuple
    changed_a: tuple
    changed_b: tuple
    values_a: np.ndarray = field(repr=False)
    values_b: np.ndarray = field(repr=False)
    baseline: float
    baseline_name: str
    atom_level: bool
    mcs_smarts: str
    split: str = "molecules"
    charge: str | None = None
    measured_a: float | None = None
    measured_b: float | None = None
    target_name: str = "prediction"
    units: str = ""

    @property
    def predicted_difference(self) -> float:
        return self.prediction_a - self.prediction_b

    @property
    def measured_difference(self) -> float | None:
        if self.measured_a is None or self.measured_b is None:
            return None
        return self.measured_a - self.measured_b

    def summary(self) -> str:
        """The split in words, e.g. ``predicted a - b = 1.44 = change 0.37 + context 1.07;
        measured 3.55``."""
        text = (f"predicted a - b = {self.predicted_difference:+.2f} = change "
                f"{self.changed_part:+.2f} + context {self.context_part:+.2f}")
        if self.measured_difference is not None:
            text += f"; measured {self.measured_difference:+.2f}"
        return text + (f" ({self.units})" if self.units else "")

    def to_dict(self) -> dict:
        """One row of :func:`compare_frame`."""
        return {"smiles_a": self.smiles_a, "smiles_b": self.smiles_b,
                "prediction_a": self.prediction_a, "prediction_b": self.prediction_b,
                "predicted_difference": self.predicted_difference,
                "changed_part": self.changed_part, "context_part": self.context_part,
                "measured_difference": (np.nan if self.measured_difference is None
                                        else self.measured_difference),
                "common_atoms": len(self.common_a),
                "changed_atoms_a": ",".join(map(str, self.changed_a)),
                "changed_atoms_b": ",".join(map(str, self.changed_b)),
                "atom_level": self.atom_level, "split": self.split, "charge": self.charge or "",
                "status": "ok", "error": ""}

    def draw(self, fmt: str = "svg", panel: tuple[int, int] = (420, 300),
             vmax: float | None = None, atom_labels: bool = False,
             names: tuple[str, str] = ("a", "b")) -> str | bytes:
        """Both molecules side by side, ``b`` laid out on ``a``'s common substructure; atoms
        coloured by contribution on one scale (red raises, blue lowers), the change's bonds
        in gold with larger circles on its atoms; legends give each prediction and the split.
        """
        mol_a, mol_b = _prepare(self.mol_a), Chem.Mol(self.mol_b)
        mol_b.RemoveAllConformers()
        if self.common_a:
            rdDepictor.GenerateDepictionMatching2DStructure(
                mol_b, mol_a, atomMap=list(zip(self.common_a, self.common_b)))
        else:
            rdDepictor.Compute2DCoords(mol_b)
        label = colorbar_label(True, self.target_name, self.units)
        if self.split == "pair" and self.charge == "holder":
            label += " per atom, each molecule against the other (same features in both: 0)"
        elif self.split == "pair":
            label += (" per atom, each molecule against the other, on the atoms each difference "
                      "comes from")
        else:
            label += ((" per atom" if self.atom_level else " (fragments spread over their atoms)")
                      + f", from {self.baseline:.2f} ({self.baseline_name})")
        scale = ColorScale.shared([self.values_a, self.values_b], True, vmax, label)
        highlights = [_pair_highlights(m, v, changed, scale, atom_labels)
                      for m, v, changed in ((mol_a, self.values_a, self.changed_a),
                                            (mol_b, self.values_b, self.changed_b))]
        legends = [f"{names[0]}: {self.prediction_a:.2f}" + self._measured(self.measured_a),
                   f"{names[1]}: {self.prediction_b:.2f}" + self._measured(self.measured_b)]
        drawer = _drawer(2 * panel[0], panel[1] + 80, fmt, panel)
        drawer.DrawMolecules([mol_a, mol_b], legends=legends,
                             highlightAtoms=[list(h[0]) for h in highlights],
                             highlightAtomColors=[h[0] for h in highlights],
                             highlightBonds=[list(h[1]) for h in highlights],
                             highlightBondColors=[h[1] for h in highlights],
                             highlightAtomRadii=[h[2] for h in highlights])
        note = f"{self.summary()}; gold: the change"
        _draw_colorbar(drawer, scale, note)
        return _finish(drawer, fmt, " | ".join([*legends, scale.label, note]))

    @staticmethod
    def _measured(value: float | None) -> str:
        return "" if value is None else f" (measured {value:.2f})"

    def _repr_html_(self) -> str:
        return f"<div>{self.draw()}</div>"


def _pair_highlights(mol: Chem.Mol, values: np.ndarray, changed: Sequence[int],
                     scale: ColorScale, labels: bool):
    changed = set(changed)
    colors = {i: c for i, v in enumerate(values) if (c := scale.color(v)) is not None}
    radii = {i: (0.5 if i in changed else 0.3) for i in range(mol.GetNumAtoms())}
    for i in changed:
        colors.setdefault(i, (0.97, 0.97, 0.97))
    bonds = {b.GetIdx(): CHANGED_COLOR for b in mol.GetBonds()
             if b.GetBeginAtomIdx() in changed or b.GetEndAtomIdx() in changed}
    if labels:
        for i in changed:
            mol.GetAtomWithIdx(i).SetProp("atomNote", f"{values[i]:+.2f}")
    return colors, bonds, radii


def compare(model, smiles_a: str, smiles_b: str, measured_a: float | None = None,
            measured_b: float | None = None, reference="training",
            timeout: int = MCS_TIMEOUT, split: str = "auto", charge: str = "change"
            ) -> PairComparison:
    """Compare two analogues with a fitted QSARModel (see the module docstring).

    Parameters
    ----------
    model : fitted QSARModel
        A regression model with signed contributions (the default fragment model).
    smiles_a, smiles_b : str
        The pair; differences are ``a - b``.
    measured_a, measured_b : float, optional
        Measured values, shown beside the predictions and as the measured difference.
    reference : as in :meth:`QSARModel.explain`
        The baseline each molecule's colours are measured from under ``split="molecules"``
        (it cancels in the split).
    timeout : int
        Seconds for the common-substructure search.
    split : {"auto", "pair", "molecules"}
        ``"pair"``: the atoms' values are their shares of the difference, one molecule against
        the other; ``"molecules"``: each molecule's own contributions; ``"auto"``: ``"pair"``
        where the model allows it (kernel and additive models on atom-summable in-parent
        descriptors: the default regression model does), else ``"molecules"``.
    charge : {"change", "holder"}
        Under the pair split, whether a shared atom's share of the difference goes to the
        changed atoms it depends on (default) or stays at the shared atom (see the module
        docstring and :func:`qsarmil.attribution.pair_atom_contributions`).

    Raises
    ------
    MoleculeError
        Where a molecule cannot be read or bagged.
    ValueError
        Where the model gives no signed contributions, or cannot give ``split="pair"``.
    """
    if model.task_ != "regression":
        raise ValueError("compare needs a regression model (classifiers: explain each)")
    _check_options(split, charge)
    pair_split = split == "pair" or (split == "auto" and pair_level_available(model))
    ref = reference_prediction(model, reference)  # checked under either split
    raw_a, raw_b = model.explain([smiles_a, smiles_b], reference="intercept")
    for e in (raw_a, raw_b):
        e._require_ok()
    common_a, common_b, smarts = common_substructure(raw_a.mol, raw_b.mol, timeout)
    if pair_split:
        values_a, values_b = pair_atom_contributions(model, raw_a.mol, raw_b.mol, common_a, common_b,
                                                     charge=charge)
        atom_level, baseline, baseline_name = True, float(raw_b.prediction), "b"
    else:
        values_a, atom_level = _per_atom(raw_a)
        values_b, _ = _per_atom(raw_b)
    changed_a = tuple(sorted(set(range(len(values_a))) - set(common_a)))
    changed_b = tuple(sorted(set(range(len(values_b))) - set(common_b)))
    changed_part = float(values_a[list(changed_a)].sum() - values_b[list(changed_b)].sum())
    context_part = float(values_a[list(common_a)].sum() - values_b[list(common_b)].sum())
    if not pair_split:
        shift = ref.value - raw_a.baseline if ref is not None and raw_a.baseline is not None else 0.0
        for values, common in ((values_a, common_a), (values_b, common_b)):
            if common:  # an equal share per common atom: as many in both, so it cancels
                values[list(common)] -= shift / len(common)
        baseline, baseline_name = (ref.value, ref.name) if ref is not None else (0.0, "none")
    return PairComparison(
        smiles_a=smiles_a, smiles_b=smiles_b, mol_a=raw_a.mol, mol_b=raw_b.mol,
        prediction_a=float(raw_a.prediction), prediction_b=float(raw_b.prediction),
        changed_part=changed_part, context_part=context_part, common_a=common_a,
        common_b=common_b, changed_a=changed_a, changed_b=changed_b, values_a=values_a,
        values_b=values_b, baseline=baseline, baseline_name=baseline_name,
        atom_level=atom_level, mcs_smarts=smarts, split="pair" if pair_split else "molecules",
        charge=charge if pair_split else None,
        measured_a=_number(measured_a), measured_b=_number(measured_b),
        target_name=raw_a.target_name, units=raw_a.units)


def _check_options(split: str, charge: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    check_charge(charge)


def _number(value) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return float(value)


def compare_frame(model, frame: pd.DataFrame, smiles_a: str = "smiles_a",
                  smiles_b: str = "smiles_b", measured_a: str | None = None,
                  measured_b: str | None = None, timeout: int = MCS_TIMEOUT,
                  split: str = "auto", charge: str = "change") -> pd.DataFrame:
    """:func:`compare` for every row of ``frame`` (one pair per row): a DataFrame with the
    input's columns and, per row, ``prediction_a, prediction_b, predicted_difference,
    changed_part, context_part, measured_difference, common_atoms, changed_atoms_a,
    changed_atoms_b, atom_level, split, charge, status, error`` (``charge`` empty where
    ``split`` is "molecules"). A pair that fails keeps its row with status
    "failed" and the reason."""
    _check_options(split, charge)  # once, not as a failure of every row
    for column in (smiles_a, smiles_b, measured_a, measured_b):
        if column is not None and column not in frame:
            raise ValueError(f"no column {column!r} in the frame (columns: {list(frame.columns)})")
    rows = []
    for _, row in frame.iterrows():
        try:
            pair = compare(model, row[smiles_a], row[smiles_b],
                           row[measured_a] if measured_a else None,
                           row[measured_b] if measured_b else None, timeout=timeout, split=split,
                           charge=charge)
            out = pair.to_dict()
        except ValueError as exc:  # MoleculeError included
            out = {"status": "failed", "error": str(exc)}
        out.pop("smiles_a", None), out.pop("smiles_b", None)
        rows.append(out)
    added = pd.DataFrame(rows, columns=list(PAIR_COLUMNS), index=frame.index)
    return pd.concat([frame, added], axis=1)
