"""Explanation: one molecule's prediction, instance table and pictures (for notebooks)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem

from milearn_core.persist import atomic_path

from .explain import atom_values, conformers_html, draw_molecule, view_conformers

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
        The part of the prediction no instance owns (the model's intercept) where the
        contributions are exact: prediction = baseline + sum of contributions.
    """

    smiles: str
    prediction: object
    status: str
    error: str
    mol: Chem.Mol | None
    instances: pd.DataFrame | None
    baseline: float | None = None

    def _require_ok(self):
        if self.status != "ok":
            raise ValueError(f"{self.smiles!r} could not be explained: {self.error}")

    @property
    def is_conformer_bag(self) -> bool:
        return self.instances is not None and "conformer_id" in self.instances

    @property
    def has_signed(self) -> bool:
        """Whether signed contributions (raises / lowers) are available."""
        return self.instances is not None and "contribution" in self.instances

    def _heavy_mol(self) -> Chem.Mol:
        return Chem.RemoveHs(self.mol) if self.is_conformer_bag else self.mol

    def atom_values(self, signed: bool = False, combine: str = "sum") -> np.ndarray:
        """Instance weights (or signed contributions) spread onto the heavy atoms."""
        self._require_ok()
        if signed and not self.has_signed:
            raise ValueError("this model gives no signed contributions (use the default "
                             "AdditiveRegressor or an instance-level "
                             "pooling such as instance_sum)")
        column = "contribution" if signed else "weight"
        return atom_values(self._heavy_mol().GetNumAtoms(), self.instances.atoms,
                           self.instances[column].to_numpy(), combine)

    def legend(self) -> str:
        value = self.prediction
        shown = f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)
        if self.has_signed and self.baseline:
            return f"prediction {shown} = baseline {self.baseline:.3g} + fragments"
        return f"prediction {shown}"

    def draw(self, signed: bool = False, fmt: str = "svg", size=(450, 350),
             atom_labels: bool = False) -> str | bytes:
        """2-D drawing with each fragment coloured by its weight (or signed contribution)."""
        return draw_molecule(self._heavy_mol(), self.atom_values(signed), signed=signed,
                             legend=self.legend(), size=size, fmt=fmt, atom_labels=atom_labels,
                             instances=list(self.instances.atoms))

    def view3d(self, **kwargs):
        """py3Dmol view of the conformers, the key (top-weight) conformer highlighted."""
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
                f"{self.draw(signed=self.has_signed)}"
                f"{table.to_html(index=False, float_format=lambda v: f'{v:.3f}')}</div>")
