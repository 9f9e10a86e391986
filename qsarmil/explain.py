"""See why: instance weights -> atom values -> 2-D drawings and 3-D conformer views.

Atom values: every atom of an instance (fragment) takes that instance's value, so fragments of
equal weight look equal whatever their size. Where instances overlap (the whole-molecule
instance of ``include_whole``, or conformers, which cover every atom) an atom's value is the
sum over the instances that hold it (``combine="sum"``) or their maximum (``combine="max"``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDepictor
from rdkit.Chem.Draw import rdMolDraw2D

__all__ = ["atom_values", "atom_colors", "draw_molecule", "draw_grid", "view_conformers",
           "conformers_html", "WEIGHT_COLOR", "RAISE_COLOR", "LOWER_COLOR"]

WEIGHT_COLOR = (0.86, 0.24, 0.10)  # weight scale: white -> this
RAISE_COLOR = (0.84, 0.15, 0.16)   # signed scale: raises the property
LOWER_COLOR = (0.13, 0.40, 0.75)   # signed scale: lowers it


def atom_values(n_atoms: int, atoms_per_instance: Sequence[Sequence[int]],
                values: Sequence[float], combine: str = "sum") -> np.ndarray:
    """Spread instance values onto the atoms they cover.

    Parameters
    ----------
    n_atoms : int
        Atom count of the parent molecule.
    atoms_per_instance : sequence of sequences of int
        Parent atom indices of each instance.
    values : sequence of float
        One value per instance (weight or signed contribution).
    combine : {"sum", "max"}
        How overlapping instances combine on a shared atom ("max" takes the largest |value|).
    """
    if len(atoms_per_instance) != len(values):
        raise ValueError(f"{len(atoms_per_instance)} instances but {len(values)} values")
    if combine not in ("sum", "max"):
        raise ValueError(f"combine must be 'sum' or 'max', got {combine!r}")
    out = np.zeros(n_atoms)
    for atoms, value in zip(atoms_per_instance, values):
        atoms = list(atoms)
        if combine == "sum":
            out[atoms] += value
        else:
            current = out[atoms]
            out[atoms] = np.where(np.abs(value) > np.abs(current), value, current)
    return out


def _blend(color: tuple[float, float, float], strength: float) -> tuple[float, float, float]:
    strength = float(np.clip(strength, 0.0, 1.0))
    return tuple(1.0 - strength * (1.0 - c) for c in color)


def atom_colors(values: np.ndarray, signed: bool = False, scale: float | None = None
                ) -> dict[int, tuple[float, float, float]]:
    """Colour per atom: white -> ``WEIGHT_COLOR`` for weights; ``LOWER_COLOR`` <- white ->
    ``RAISE_COLOR`` for signed values. ``scale`` is the value of full colour (default: the
    largest |value| of the molecule). Atoms of value 0 are left uncoloured."""
    values = np.asarray(values, dtype=float)
    scale = scale if scale is not None else (np.abs(values).max() if len(values) else 0.0)
    colors = {}
    for i, v in enumerate(values):
        if v == 0 or scale <= 0:
            continue
        base = (RAISE_COLOR if v > 0 else LOWER_COLOR) if signed else WEIGHT_COLOR
        colors[i] = _blend(base, abs(v) / scale)
    return colors


def _prepare(mol: Chem.Mol) -> Chem.Mol:
    mol = Chem.RemoveHs(mol) if mol.GetNumConformers() and any(
        a.GetAtomicNum() == 1 for a in mol.GetAtoms()) else Chem.Mol(mol)
    mol.RemoveAllConformers()
    rdDepictor.Compute2DCoords(mol)
    return mol


def _highlights(mol: Chem.Mol, values: np.ndarray, signed: bool, scale, labels: bool,
                instances: Sequence[Sequence[int]] | None = None):
    colors = atom_colors(values, signed, scale)
    # A bond is coloured when both its atoms lie in one instance (given), else when both
    # atoms carry the same value; cut bonds between fragments stay plain.
    owner: dict[int, set[int]] = {}
    for k, atoms in enumerate(instances or ()):
        for a in atoms:
            owner.setdefault(a, set()).add(k)
    bond_colors = {}
    for bond in mol.GetBonds():
        a, b = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        if a not in colors or b not in colors:
            continue
        inside = owner.get(a, set()) & owner.get(b, set()) if instances else values[a] == values[b]
        if inside:
            bond_colors[bond.GetIdx()] = colors[a]
    if labels:
        for i, v in enumerate(values):
            mol.GetAtomWithIdx(i).SetProp("atomNote", f"{v:+.2f}" if signed else f"{v:.2f}")
    return colors, bond_colors


def _drawer(width: int, height: int, fmt: str, panel=None):
    if fmt not in ("svg", "png"):
        raise ValueError(f"fmt must be 'svg' or 'png', got {fmt!r}")
    cls = rdMolDraw2D.MolDraw2DSVG if fmt == "svg" else rdMolDraw2D.MolDraw2DCairo
    drawer = cls(width, height, *(panel or ()))
    drawer.drawOptions().fillHighlights = True
    drawer.drawOptions().continuousHighlight = True
    return drawer


def _finish(drawer, fmt: str):
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def draw_molecule(mol: Chem.Mol, values: Sequence[float], signed: bool = False, legend: str = "",
                  size: tuple[int, int] = (450, 350), fmt: str = "svg", atom_labels: bool = False,
                  scale: float | None = None,
                  instances: Sequence[Sequence[int]] | None = None) -> str | bytes:
    """Draw ``mol`` with atoms and bonds coloured by ``values`` (one per atom).

    ``instances`` (atoms per fragment) keeps bonds between two fragments uncoloured even when
    the fragments carry equal values. Returns SVG text (``fmt="svg"``) or PNG bytes.
    """
    mol = _prepare(mol)
    values = np.asarray(values, dtype=float)
    if len(values) != mol.GetNumAtoms():
        raise ValueError(f"{len(values)} atom values for a molecule of {mol.GetNumAtoms()} atoms")
    colors, bond_colors = _highlights(mol, values, signed, scale, atom_labels, instances)
    drawer = _drawer(*size, fmt)
    drawer.DrawMolecule(mol, legend=legend, highlightAtoms=list(colors),
                        highlightAtomColors=colors, highlightBonds=list(bond_colors),
                        highlightBondColors=bond_colors)
    picture = _finish(drawer, fmt)
    if fmt == "svg" and legend:
        # RDKit draws text as paths; a <title> keeps the legend readable and searchable.
        head, sep, rest = picture.partition(">\n<svg")
        start = rest.index(">") + 1
        picture = f"{head}{sep}{rest[:start]}<title>{html.escape(legend)}</title>{rest[start:]}"
    return picture


def draw_grid(mols: Sequence[Chem.Mol], values: Sequence[Sequence[float]],
              legends: Sequence[str] | None = None, signed: bool = False, per_row: int = 4,
              panel: tuple[int, int] = (300, 250), fmt: str = "svg") -> str | bytes:
    """Several molecules in one picture, each coloured by its own atom values."""
    if not mols:
        raise ValueError("no molecule to draw")
    prepared = [_prepare(m) for m in mols]
    highlights = [_highlights(m, np.asarray(v, dtype=float), signed, None, False)
                  for m, v in zip(prepared, values)]
    rows = -(-len(mols) // per_row)
    cols = min(per_row, len(mols))
    drawer = _drawer(cols * panel[0], rows * panel[1], fmt, panel)
    drawer.DrawMolecules(
        prepared, legends=list(legends) if legends else [""] * len(mols),
        highlightAtoms=[list(c) for c, _ in highlights],
        highlightAtomColors=[c for c, _ in highlights],
        highlightBonds=[list(b) for _, b in highlights],
        highlightBondColors=[b for _, b in highlights])
    return _finish(drawer, fmt)


@lru_cache(maxsize=1)
def _3dmol_js() -> str:
    return (resources.files("qsarmil") / "static" / "3Dmol-min.js").read_text()


def view_conformers(mol: Chem.Mol, weights: Sequence[float], width: int = 500, height: int = 400,
                    faded_opacity: float = 0.2, js: str | None = None):
    """A py3Dmol view of all conformers; the top-weighted one solid and coloured, the others
    faded. ``js``: where the browser loads 3Dmol.js from (py3Dmol's default if None)."""
    import py3Dmol

    weights = np.asarray(weights, dtype=float)
    conf_ids = [c.GetId() for c in mol.GetConformers()]
    if len(conf_ids) != len(weights):
        raise ValueError(f"{len(weights)} weights for {len(conf_ids)} conformers")
    key = int(np.argmax(weights))
    view = py3Dmol.view(width=width, height=height, **({"js": js} if js else {}))
    for k, conf_id in enumerate(conf_ids):
        view.addModel(Chem.MolToMolBlock(mol, confId=conf_id), "sdf")
        if k == key:
            style = {"stick": {"colorscheme": "orangeCarbon", "radius": 0.2}}
        else:
            style = {"stick": {"color": "grey", "opacity": faded_opacity, "radius": 0.12}}
        view.setStyle({"model": k}, style)
    view.zoomTo()
    return view


def conformers_html(mol: Chem.Mol, weights: Sequence[float], title: str = "",
                    **view_kwargs) -> str:
    """A standalone HTML page with the 3-D view; 3Dmol.js is inlined, so it opens offline."""
    view = view_conformers(mol, weights, **view_kwargs)
    body = view.write_html()  # the viewer div + script; it only fetches 3Dmol.js if absent
    inline = (f"<script>{_3dmol_js()}</script>\n"
              "<script>var $3Dmolpromise = Promise.resolve();</script>\n")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title>{inline}</head><body>\n<h3>{html.escape(title)}</h3>\n{body}\n</body></html>")
