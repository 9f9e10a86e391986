"""Explanation: one molecule's prediction, instance table and pictures (for notebooks)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem

from milearn_core.persist import atomic_path

from .columns import printable
from .explain import (
    FLAT_NOTE,
    atom_values,
    colorbar_label,
    conformers_html,
    draw_molecule,
    is_flat,
    view_conformers,
)

__all__ = ["Explanation"]


@dataclass
class Explanation:
    """What drove one molecule's prediction.

    Attributes
    ----------
    smiles, prediction, status, error
        As in :meth:`QSARModel.predict_table`.
    mol : rdkit Mol or None
        The bagged molecule (with conformers for conformer bags).
    instances : DataFrame or None
        One row per instance: ``instance, atoms, smiles, weight`` (+ ``conformer_id``,
        ``contribution`` where available).
    baseline : float or None
        The reference the contributions are measured from where they are exact: prediction =
        baseline + sum of contributions (see :mod:`qsarmil.attribution`; by default the mean
        prediction over the training molecules).
    baseline_name : str
        What the baseline is ("mean training prediction", "intercept", "reference <SMILES>"),
        stated in legends.
    atom_contributions : ndarray or None
        One exact contribution per heavy atom where the model splits over atoms (they add up
        to the prediction minus the baseline, and a fragment's contribution is the sum of its
        atoms'); signed drawings then colour atoms (``level="atoms"``) by default.
    target_name, units : str
        What is predicted and in which units, shown on colour bars (e.g. "logS",
        "log mol/L").
    domain : dict or None
        One row of :meth:`qsarmil.domain.ApplicabilityDomain.score` (``max_similarity``,
        ``unseen_fraction``, ``in_domain``, optionally ``prediction_in_range``); a
        prediction outside the domain is flagged in the legend.
    reliability : dict or None
        The row's reliability columns of :meth:`QSARModel.predict_table` (interval or class
        set and its level, ``expected_error``, ``domain_note``, ``in_training_set``,
        ``training_value``, ``nearest_<j>_*``); legends show the interval or set and, for a
        training molecule, its measured value.
    stripped : str
        The counter-ions and solvents removed before the molecule was bagged (formulas, e.g.
        ``"Na+"``; "" when nothing was), named in legends and reports.
    """

    smiles: str
    prediction: object
    status: str
    error: str
    mol: Chem.Mol | None
    instances: pd.DataFrame | None
    baseline: float | None = None
    target_name: str = "prediction"
    units: str = ""
    domain: dict | None = None
    reliability: dict | None = None
    baseline_name: str = ""
    atom_contributions: np.ndarray | None = None
    stripped: str = ""

    def _require_ok(self):
        if self.status != "ok":
            # Shortened: a 5 000-character SMILES would bury the reason.
            raise ValueError(f"{printable(self.smiles, 60)!r} could not be explained: {self.error}")

    @property
    def is_conformer_bag(self) -> bool:
        return self.instances is not None and "conformer_id" in self.instances

    @property
    def has_signed(self) -> bool:
        """Whether signed contributions (raises / lowers) are available."""
        return self.instances is not None and "contribution" in self.instances

    def _heavy_mol(self) -> Chem.Mol:
        return Chem.RemoveHs(self.mol) if self.is_conformer_bag else self.mol

    @property
    def has_atom_level(self) -> bool:
        """Whether exact per-atom contributions are available (``atom_contributions``)."""
        return self.atom_contributions is not None

    def level(self, signed: bool, level: str | None = None) -> str:
        """The level a picture shows: ``level`` if given, else "atoms" for signed values of a
        model that splits over atoms, "fragments" otherwise."""
        if level is None:
            return "atoms" if signed and self.has_atom_level else "fragments"
        if level not in ("atoms", "fragments"):
            raise ValueError(f"level must be 'atoms' or 'fragments', got {level!r}")
        if level == "atoms" and not (signed and self.has_atom_level):
            raise ValueError("atom-level values need signed contributions of a model that splits "
                             "over atoms (the default fragment models)")
        return level

    def atom_values(self, signed: bool = False, combine: str = "sum",
                    level: str | None = None) -> np.ndarray:
        """Values per heavy atom: each atom's own contribution (``level="atoms"``, the default
        for signed values where available) or its instance's weight or contribution
        (``"fragments"``)."""
        self._require_ok()
        if signed and not self.has_signed:
            raise ValueError("this model gives no signed contributions (use the default "
                             "regression model, AdditiveRegressor or an instance-level "
                             "pooling such as instance_sum)")
        if self.level(signed, level) == "atoms":
            return np.asarray(self.atom_contributions, dtype=np.float64).copy()
        column = "contribution" if signed else "weight"
        return atom_values(self._heavy_mol().GetNumAtoms(), self.instances.atoms,
                           self.instances[column].to_numpy(), combine)

    def drawn_groups(self, signed: bool, level: str | None = None) -> list:
        """Atoms per coloured unit: one per atom at atom level, else the instances."""
        if self.level(signed, level) == "atoms":
            return [(a,) for a in range(self._heavy_mol().GetNumAtoms())]
        return list(self.instances.atoms)

    def baseline_text(self) -> str:
        """``baseline -2.71 (mean training prediction)``; "" without a baseline."""
        if self.baseline is None:
            return ""
        return f"baseline {self.baseline:.2f}" + (f" ({self.baseline_name})"
                                                  if self.baseline_name else "")

    @property
    def weights_flat(self) -> bool:
        """Whether the weights single nothing out (:func:`qsarmil.explain.is_flat`)."""
        self._require_ok()
        return is_flat(self.instances.weight.to_numpy())

    def draws_neutral(self, signed: bool) -> bool:
        """Whether a 2-D drawing shows no colour: weights that are flat, or spread over
        every atom alike (conformer bags: see :meth:`view3d`)."""
        return not signed and (self.weights_flat or self.is_conformer_bag)

    def _shown(self, value) -> str:
        return f"{value:.2f}" if isinstance(value, (float, np.floating)) else str(value)

    def legend(self) -> str:
        """The prediction in words, e.g. ``prediction -1.89 = baseline 0.11 + contributions
        (-2.00)`` for additive models."""
        text = f"prediction {self._shown(self.prediction)}"
        if self.has_signed and self.baseline is not None:
            total = float(self.instances.contribution.sum())
            text += f" = {self.baseline_text()} + contributions ({total:.2f})"
        return text + self.sureness()

    def sureness(self) -> str:
        """How sure, for legends: e.g. ``; 90% interval -3.10 to -1.20`` or ``; 90% set
        {active}``, plus ``; in training set (measured -3.99)``; "" without reliability."""
        r = self.reliability or {}
        text = ""
        level = r.get("interval_level", r.get("set_level"))
        if r.get("prediction_lower") is not None and np.isfinite(r["prediction_lower"]):
            text += (f"; {level:.0%} interval {r['prediction_lower']:.2f} to "
                     f"{r['prediction_upper']:.2f}")
        elif r.get("prediction_set") is not None:
            text += f"; {level:.0%} set {{{r['prediction_set'].replace('|', ', ')}}}"
        if r.get("in_training_set"):
            text += f"; in training set (measured {self._shown(r.get('training_value'))})"
        return text

    def caption(self, name: str | None = None, signed: bool | None = None,
                short: bool = False) -> str:
        """Drawing legend: ``name: legend()``, or with ``short`` ``aspirin: -1.89 = 0.11 +
        (-2.00)`` (for grids, whose colour bar states the formula once); plus a line on flat
        weights, one naming stripped salts and one on the applicability domain where they
        apply."""
        signed = self.has_signed if signed is None else signed
        if short:
            text = f"{name or 'prediction'}: {self._shown(self.prediction)}"
            if signed and self.has_signed and self.baseline is not None:
                total = float(self.instances.contribution.sum())
                text += f" = {self.baseline:.2f} + ({total:.2f})"
        else:
            text = f"{name}: {self.legend()}" if name else self.legend()
        lines = [text]
        if not signed and self.is_conformer_bag:
            lines.append("weights per conformer: see view3d()")
        elif not signed and self.weights_flat:
            lines.append(FLAT_NOTE)
        if self.stripped:
            lines.append(f"stripped: {self.stripped}")
        if (flag := self.domain_note()):
            lines.append(flag)
        return "\n".join(lines)

    def domain_note(self) -> str:
        """Why the prediction is outside the applicability domain ("" when it is not)."""
        d = self.domain or {}
        if (self.reliability or {}).get("domain_note"):  # the reasons, in words
            return "! outside domain: " + self.reliability["domain_note"]
        reasons = []
        if not d.get("in_domain", True):
            reasons.append(f"max similarity {d.get('max_similarity', float('nan')):.2f}, "
                           f"{d.get('unseen_fraction', float('nan')):.0%} unseen environments")
        if not d.get("prediction_in_range", True):
            reasons.append("prediction outside the training range")
        return ("! outside domain: " + "; ".join(reasons)) if reasons else ""

    def draw(self, signed: bool | None = None, fmt: str = "svg", size=(450, 350),
             atom_labels: bool = False, vmax: float | None = None, name: str | None = None,
             colorbar: bool = True, short: bool = False, level: str | None = None,
             note: str = "") -> str | bytes:
        """2-D drawing coloured by signed contribution (default where the model gives them:
        red raises, blue lowers, white 0) or by weight (white -> purple), with a colour bar.
        ``level``: "atoms" (each atom its own contribution; the default where the model splits
        over atoms) or "fragments" (each fragment's atoms its contribution). Flat weights draw
        without colour. ``vmax``: the |value| of full colour (default: this molecule's
        largest); ``atom_labels``: one value per atom or fragment; ``short``: the short legend
        of :meth:`caption` (where a report states the baseline); ``note``: a line under the
        colour bar's title (e.g. where the scale comes from)."""
        signed = self.has_signed if signed is None else signed
        level = self.level(signed, level) if self.status == "ok" else level
        title = colorbar_label(signed, self.target_name, self.units) + (
            " per atom" if level == "atoms" else "")
        return draw_molecule(
            self._heavy_mol(), self.atom_values(signed, level=level), signed=signed,
            legend=self.caption(name, signed, short), size=size, fmt=fmt, atom_labels=atom_labels,
            scale=vmax, instances=self.drawn_groups(signed, level), colorbar=colorbar,
            colorbar_title=title, neutral=self.draws_neutral(signed), note=note)

    def view3d(self, **kwargs):
        """py3Dmol view of the conformers with their weights; a key (top-weight) conformer
        is highlighted only when it stands out (:func:`qsarmil.explain.is_flat`)."""
        self._require_ok()
        if not self.is_conformer_bag:
            raise ValueError("3-D views need a model trained on conformer bags")
        return view_conformers(self.mol, self.instances.weight.to_numpy(), **kwargs)

    def to_html(self, path: str | Path | None = None) -> str:
        """Standalone HTML of the 3-D view (conformer bags) or the 2-D drawing; written to
        ``path`` if given. Opens offline: 3Dmol.js is inlined."""
        self._require_ok()
        if self.is_conformer_bag:
            page = conformers_html(self.mol, self.instances.weight.to_numpy(),
                                   title=f"{self.smiles} - {self.legend()}")
        else:
            page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
                    f"{html.escape(self.smiles)}</title></head><body>{self._repr_html_()}"
                    f"</body></html>")
        if path is not None:
            with atomic_path(path) as tmp:
                tmp.write_text(page)
        return page

    def _repr_html_(self) -> str:
        if self.status != "ok":
            return f"<p><b>{html.escape(self.smiles)}</b>: failed ({html.escape(self.error)})</p>"
        table = self.instances.copy()
        table["atoms"] = table.atoms.map(lambda a: ",".join(map(str, a)))
        return (f"<div><p><b>{html.escape(self.smiles)}</b> - {html.escape(self.legend())}</p>"
                f"{self.draw()}"
                f"{table.to_html(index=False, float_format=lambda v: f'{v:.3f}')}</div>")
