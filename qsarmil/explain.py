"""See why: instance values -> atom values -> 2-D drawings with a colour bar, and 3-D views.

Atom values: every atom of an instance (fragment) takes that instance's value, so fragments of
equal value look equal whatever their size. Where instances overlap (the whole-molecule
instance of ``include_whole``, or conformers, which cover every atom) an atom's value is the
sum over the instances that hold it (``combine="sum"``) or their maximum (``combine="max"``).

One colour meaning everywhere:

- signed contributions (raises / lowers the prediction): blue <- white (0) -> red;
- unsigned instance weights: white -> purple (a single hue, never red);
- a drawing of several molecules uses one scale, by default the largest |value| of the set,
  so equal colours mean equal values across molecules; every picture carries a colour bar
  stating what the colour measures, in the target's units where known.

Flat weights: a set of weights singles nothing out when its largest weight is below
``FLAT_RATIO`` (1.5) times the uniform weight 1/n (see :func:`is_flat`); such a molecule is
drawn without colour and its legend says "no instance stands out".
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDepictor
from rdkit.Chem.Draw import rdMolDraw2D
from rdkit.Geometry import Point2D

__all__ = ["atom_values", "atom_colors", "draw_molecule", "draw_grid", "view_conformers",
           "conformers_html", "is_flat", "shared_vmax", "conformer_note", "ColorScale",
           "colorbar_box", "colorbar_label", "legend_lines",
           "WEIGHT_COLOR", "RAISE_COLOR", "LOWER_COLOR", "FLAT_RATIO", "FLAT_NOTE"]

WEIGHT_COLOR = (0.42, 0.18, 0.62)  # weight scale: white -> purple (one hue, not red)
RAISE_COLOR = (0.84, 0.15, 0.16)   # signed scale: raises the prediction
LOWER_COLOR = (0.13, 0.40, 0.75)   # signed scale: lowers it
FLAT_RATIO = 1.5                   # flat when max weight < FLAT_RATIO / n
FLAT_NOTE = "no instance stands out"
WEIGHT_LABEL = "instance weight (sums to 1 per molecule)"

_BAND = 58         # pixels below the molecule(s) for the colour bar
_BAR_HEIGHT = 14
_BAR_STEPS = 64
_FONT = 13         # colour-bar and legend text, pixels (legends never shrink below it)
_LINE = _FONT + 4  # pixels per legend line
_CHAR = 0.55       # a character's width, in font sizes (for wrapping legends)
_MAX_LINES = 6     # legend lines per panel; longer legends end in "..."


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


def is_flat(weights: Sequence[float], ratio: float = FLAT_RATIO) -> bool:
    """Whether a bag's weights single nothing out: max weight < ``ratio`` x uniform (1/n).

    Weights are normalised to sum 1 first. One instance is flat (nothing to choose from);
    so are all-zero weights. With the default ratio 1.5, ten conformers at 0.096-0.104 are
    flat, while a fragment holding 0.33 of nine fragments (3x uniform) stands out.
    """
    w = np.abs(np.asarray(weights, dtype=float))
    total = w.sum()
    return len(w) == 0 or total <= 0 or w.max() / total < ratio / len(w)


def colorbar_label(signed: bool, target_name: str = "prediction", units: str = "") -> str:
    """What the colours measure, e.g. ``"contribution to logS (log mol/L)"``."""
    if not signed:
        return WEIGHT_LABEL
    return f"contribution to {target_name}" + (f" ({units})" if units else "")


@dataclass(frozen=True)
class ColorScale:
    """Value -> colour, shared by every molecule of a picture.

    Parameters
    ----------
    signed : bool
        Blue <- white -> red for signed values; white -> purple for weights.
    vmax : float
        The |value| drawn at full colour; larger values are clipped to it.
    label : str
        The colour bar's title (what is measured, with units).
    """

    signed: bool
    vmax: float
    label: str = ""

    @classmethod
    def shared(cls, values: Sequence[Sequence[float]], signed: bool,
               vmax: float | None = None, label: str = "") -> ColorScale:
        """One scale for several molecules: ``vmax`` or the largest |value| among them."""
        if vmax is None:
            vmax = max((float(np.abs(v).max()) for v in values if len(v)), default=0.0)
        if not np.isfinite(vmax) or vmax < 0:
            raise ValueError(f"vmax must be a finite number >= 0, got {vmax!r}")
        return cls(signed, float(vmax), label or colorbar_label(signed))

    def color(self, value: float) -> tuple[float, float, float] | None:
        """The colour of ``value``, or None (uncoloured) for 0 or an empty scale."""
        if value == 0 or self.vmax <= 0:
            return None
        base = (RAISE_COLOR if value > 0 else LOWER_COLOR) if self.signed else WEIGHT_COLOR
        return _blend(base, abs(value) / self.vmax)

    def ticks(self) -> list[tuple[float, str]]:
        """(position in [0, 1] along the bar, text) of the bar's tick labels."""
        top = f"{self.vmax:.3g}"
        if self.signed:
            return [(0.0, f"-{top} lowers"), (0.5, "0"), (1.0, f"raises +{top}")]
        return [(0.0, "0"), (1.0, top)]

    def bar_value(self, t: float) -> float:
        """The value shown at position ``t`` in [0, 1] along the bar."""
        return (2 * t - 1) * self.vmax if self.signed else t * self.vmax


def _blend(color: tuple[float, float, float], strength: float) -> tuple[float, float, float]:
    strength = float(np.clip(strength, 0.0, 1.0))
    return tuple(1.0 - strength * (1.0 - c) for c in color)


def atom_colors(values: np.ndarray, signed: bool = False, scale: float | None = None
                ) -> dict[int, tuple[float, float, float]]:
    """Colour per atom on a :class:`ColorScale` (``scale`` = its vmax; default: the largest
    |value| of ``values``). Atoms of value 0 are left uncoloured."""
    values = np.asarray(values, dtype=float)
    colour_scale = ColorScale.shared([values], signed, scale)
    colors = {i: colour_scale.color(v) for i, v in enumerate(values)}
    return {i: c for i, c in colors.items() if c is not None}


def _prepare(mol: Chem.Mol) -> Chem.Mol:
    mol = Chem.RemoveHs(mol) if mol.GetNumConformers() and any(
        a.GetAtomicNum() == 1 for a in mol.GetAtoms()) else Chem.Mol(mol)
    mol.RemoveAllConformers()
    rdDepictor.Compute2DCoords(mol)
    return mol


def _groups(mol: Chem.Mol, values: np.ndarray,
            instances: Sequence[Sequence[int]] | None) -> list[list[int]]:
    """Atom groups to label: the instances that are part of the molecule (the whole molecule
    only when no instance is smaller), else the connected runs of atoms with equal values."""
    n = mol.GetNumAtoms()
    if instances is not None:
        unique = sorted({tuple(sorted(set(a))) for a in instances if len(a)})
        parts = [list(a) for a in unique if len(a) < n]
        return parts or [list(range(n))] * bool(unique)
    cut = [b.GetIdx() for b in mol.GetBonds()
           if values[b.GetBeginAtomIdx()] != values[b.GetEndAtomIdx()]]
    pieces = Chem.FragmentOnBonds(mol, cut, addDummies=False) if cut else mol
    return [list(a) for a in Chem.GetMolFrags(pieces)]


def _label_fragments(mol: Chem.Mol, values: np.ndarray, signed: bool,
                     instances: Sequence[Sequence[int]] | None) -> None:
    """One note per fragment, on its atom nearest the fragment's 2-D centroid; atoms that
    already carry text (heteroatoms) or three or more bonds count half a bond further away,
    so the note lands where there is room."""
    xy = mol.GetConformer().GetPositions()[:, :2]  # depiction units: bond length 1.5
    crowded = np.array([(a.GetAtomicNum() != 6) + (a.GetDegree() >= 3) for a in mol.GetAtoms()])
    used: set[int] = set()
    for atoms in _groups(mol, values, instances):
        centre = xy[atoms].mean(axis=0)
        distance = np.linalg.norm(xy[atoms] - centre, axis=1) + 0.75 * crowded[atoms]
        order = np.argsort(distance, kind="stable")
        free = [atoms[k] for k in order if atoms[k] not in used]
        if not free:
            continue
        atom = free[0]
        used.add(atom)
        value = values[atom]
        mol.GetAtomWithIdx(atom).SetProp("atomNote", f"{value:+.2f}" if signed else f"{value:.2f}")


def _highlights(mol: Chem.Mol, values: np.ndarray, scale: ColorScale, labels: bool,
                instances: Sequence[Sequence[int]] | None = None, neutral: bool = False):
    colors = {} if neutral else {i: c for i, v in enumerate(values)
                                 if (c := scale.color(v)) is not None}
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
        _label_fragments(mol, values, scale.signed, instances)
    return colors, bond_colors


def _drawer(width: int, height: int, fmt: str, panel=None):
    if fmt not in ("svg", "png"):
        raise ValueError(f"fmt must be 'svg' or 'png', got {fmt!r}")
    cls = rdMolDraw2D.MolDraw2DSVG if fmt == "svg" else rdMolDraw2D.MolDraw2DCairo
    drawer = cls(width, height, *(panel or ()))
    options = drawer.drawOptions()
    options.fillHighlights = True
    options.continuousHighlight = True
    options.annotationFontScale = 0.75  # fragment labels readable at the default size
    options.minFontSize = 9
    options.fixedBondLength = 36  # small molecules are not blown up to fill the panel
    return drawer


def _band(note: str) -> int:
    return _BAND + (_FONT + 6 if note else 0)


def colorbar_box(width: int, height: int, note: bool = False) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1) of the colour bar in a ``width`` x ``height`` picture
    (``note``: whether the picture has a note line under the bar's title)."""
    bar_width = min(300, int(0.7 * width))
    x0 = (width - bar_width) // 2
    y0 = height - _band("x" if note else "") + 6
    return x0, y0, x0 + bar_width, y0 + _BAR_HEIGHT


def _draw_colorbar(drawer, scale: ColorScale, note: str = "") -> None:
    """Gradient, ticks and title at the bottom of the canvas, with RDKit's primitives."""
    x0, y0, x1, y1 = colorbar_box(drawer.Width(), drawer.Height(), bool(note))
    step = (x1 - x0) / _BAR_STEPS
    drawer.SetFillPolys(True)
    for k in range(_BAR_STEPS):
        value = scale.bar_value((k + 0.5) / _BAR_STEPS)
        drawer.SetColour(scale.color(value) or (1.0, 1.0, 1.0))
        drawer.DrawRect(Point2D(x0 + k * step, y0), Point2D(x0 + (k + 1) * step + 0.5, y1), True)
    drawer.SetFillPolys(False)
    drawer.SetColour((0.3, 0.3, 0.3))
    drawer.DrawRect(Point2D(x0, y0), Point2D(x1, y1), True)
    drawer.SetColour((0.0, 0.0, 0.0))
    drawer.SetFontSize(_FONT)
    for t, text in scale.ticks():
        align = {0.0: 1, 1.0: 2}.get(t, 0)  # START at the left end, END at the right end
        drawer.DrawString(text, Point2D(x0 + t * (x1 - x0), y1 + 10), align, True)
    drawer.DrawString(scale.label, Point2D(drawer.Width() / 2, y1 + 28), 0, True)
    if note:
        drawer.DrawString(note, Point2D(drawer.Width() / 2, y1 + 28 + _FONT + 4), 0, True)


def _finish(drawer, fmt: str, title: str = ""):
    drawer.FinishDrawing()
    picture = drawer.GetDrawingText()
    if fmt == "svg" and title:
        # RDKit draws text as paths; a <title> keeps legend and units readable and searchable.
        head, sep, rest = picture.partition(">\n<svg")
        start = rest.index(">") + 1
        picture = f"{head}{sep}{rest[:start]}<title>{html.escape(title)}</title>{rest[start:]}"
    return picture


def draw_molecule(mol: Chem.Mol, values: Sequence[float], signed: bool = False, legend: str = "",
                  size: tuple[int, int] = (450, 350), fmt: str = "svg", atom_labels: bool = False,
                  scale: float | None = None,
                  instances: Sequence[Sequence[int]] | None = None, *,
                  colorbar: bool = True, colorbar_title: str | None = None,
                  neutral: bool = False, note: str = "") -> str | bytes:
    """Draw ``mol`` with atoms and bonds coloured by ``values`` (one per atom).

    Parameters
    ----------
    signed : bool
        Signed scale (blue lowers, red raises) instead of the weight scale (white -> purple).
    scale : float, optional
        The |value| of full colour (vmax); default: the largest |value| of ``values``.
    instances : sequences of int, optional
        Atoms per fragment: bonds between two fragments stay uncoloured, and labels go one
        per fragment.
    atom_labels : bool
        Write each fragment's value once, on its atom nearest the fragment's 2-D centre.
    colorbar, colorbar_title, note
        A colour bar under the molecule, its title (default: what the scale measures) and an
        extra note after the title.
    neutral : bool
        Draw no colour (flat weights: nothing singled out).

    Returns
    -------
    SVG text (``fmt="svg"``) or PNG bytes.
    """
    mol = _prepare(mol)
    values = np.asarray(values, dtype=float)
    if len(values) != mol.GetNumAtoms():
        raise ValueError(f"{len(values)} atom values for a molecule of {mol.GetNumAtoms()} atoms")
    colour_scale = ColorScale.shared([values], signed, scale, colorbar_title or "")
    colors, bond_colors = _highlights(mol, values, colour_scale, atom_labels, instances, neutral)
    width, height = size
    lines = legend_lines(legend, width)
    area = height - (_band(note) if colorbar else 0) - _legend_height(lines)
    if area < 40:
        raise ValueError(f"a {width}x{height} picture leaves no room for the molecule")
    drawer = _drawer(width, height, fmt, (width, area))
    drawer.DrawMolecule(mol, highlightAtoms=list(colors), highlightAtomColors=colors,
                        highlightBonds=list(bond_colors), highlightBondColors=bond_colors)
    _draw_lines(drawer, lines, width / 2, area)
    if colorbar:
        _draw_colorbar(drawer, colour_scale, note)
    title = " | ".join(t for t in (legend.replace("\n", ", "),
                                   colour_scale.label if colorbar else "", note) if t)
    return _finish(drawer, fmt, title)


def legend_lines(text: str, width: int, max_lines: int = _MAX_LINES) -> list[str]:
    """``text`` wrapped to a ``width``-pixel panel at the fixed legend font size: its own
    lines kept, long ones broken between words, at most ``max_lines`` (the last ends in
    "..." where text was left out; the SVG title keeps all of it)."""
    chars = max(8, int((width - 8) / (_CHAR * _FONT)))
    lines = [piece for line in text.split("\n") if line
             for piece in textwrap.wrap(line, chars, break_long_words=True)]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: chars - 3] + "..."]
    return lines


def _legend_height(lines: Sequence[str]) -> int:
    return len(lines) * _LINE + (6 if lines else 0)


def _draw_lines(drawer, lines: Sequence[str], x: float, y: float,
                colour: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
    """Centred text lines at the fixed font size, the first one's top at pixel ``y``."""
    drawer.SetOffset(0, 0)
    drawer.SetColour(colour)
    drawer.SetFontSize(_FONT)
    for k, line in enumerate(lines):
        drawer.DrawString(line, Point2D(x, y + 3 + _LINE * (k + 0.5)), 0, True)


def _grid(mols: Sequence[Chem.Mol], values: Sequence[np.ndarray], legends: Sequence[str],
          scale: ColorScale, neutral: Sequence[bool], instances: Sequence | None,
          per_row: int, panel: tuple[int, int], fmt: str, atom_labels: bool,
          colorbar: bool, note: str, failures: Sequence[str] | None = None) -> str | bytes:
    """Panels row by row: each molecule above its legend (fixed font size; panels grow to
    hold the longest legend rather than shrinking its text), a failed row's message in place
    of its molecule, then one colour bar."""
    if not mols:
        raise ValueError("no molecule to draw")
    failures = failures or [""] * len(mols)
    prepared = [None if failure else _prepare(m) for m, failure in zip(mols, failures)]
    instances = instances or [None] * len(mols)
    highlights = [({}, {}) if m is None else
                  _highlights(m, v, scale, atom_labels and len(v) > 0, inst, flat)
                  for m, v, inst, flat in zip(prepared, values, instances, neutral)]
    lines = [legend_lines(legend, panel[0]) for legend in legends]
    area = panel[1] - _legend_height(["", ""])  # room for the molecule: two legend lines below
    if area < 40:
        raise ValueError(f"panel {panel} leaves no room for the molecule")
    height = area + _legend_height(max(lines, key=len, default=[]) or ["", ""])
    height = max(height, panel[1])
    rows = -(-len(mols) // per_row)
    cols = min(per_row, len(mols))
    band = _band(note) if colorbar else 0
    drawer = _drawer(cols * panel[0], rows * height + band, fmt, (panel[0], area))
    drawer.drawOptions().annotationFontScale = 1.0  # molecules share one (small) scale
    for k, (mol, (colors, bonds)) in enumerate(zip(prepared, highlights)):
        x, y = (k % per_row) * panel[0], (k // per_row) * height
        if mol is None:
            message = legend_lines(f"not drawn: {failures[k]}", panel[0] - 20, _MAX_LINES)
            _draw_lines(drawer, message, x + panel[0] / 2,
                        y + (area - _legend_height(message)) / 2, (0.55, 0.1, 0.1))
        else:
            drawer.SetOffset(x, y)
            drawer.DrawMolecule(mol, highlightAtoms=list(colors), highlightAtomColors=colors,
                                highlightBonds=list(bonds), highlightBondColors=bonds)
        _draw_lines(drawer, lines[k], x + panel[0] / 2, y + area)
    drawer.SetOffset(0, 0)
    if colorbar:
        _draw_colorbar(drawer, scale, note)
    texts = [*(legend.replace("\n", ", ") + (f" ({failure})" if failure else "")
               for legend, failure in zip(legends, failures) if legend),
             scale.label if colorbar else "", note]
    return _finish(drawer, fmt, " | ".join(t for t in texts if t))


def draw_grid(explanations: Sequence, ids: Sequence | None = None,
              names: Sequence[str] | None = None, vmax: float | None = None, *,
              signed: bool | None = None, per_row: int = 4, panel: tuple[int, int] = (300, 250),
              fmt: str = "svg", atom_labels: bool = False, colorbar: bool = True,
              legends: Sequence[str] | None = None) -> str | bytes:
    """Several explanations in one picture, on one shared colour scale with one colour bar.

    Parameters
    ----------
    explanations : sequence of Explanation
        Failed ones keep their panel: their message is written where the molecule would be.
        Legends are written at one fixed font size, wrapped to the panel's width; panels
        grow to hold the longest legend. (The older form
        ``draw_grid(mols, atom_values, legends=...)`` still works: pass RDKit molecules first
        and per-atom values second.)
    ids, names : sequences, optional
        Shown in the legends ("ID name: prediction = baseline + (sum of contributions)").
    vmax : float, optional
        The |value| of full colour; default: the largest |value| of the set, so equal colours
        mean equal values across the molecules.
    signed : bool, optional
        Default: signed when every explained molecule has contributions, else weights.
    """
    if len(explanations) and isinstance(explanations[0], Chem.Mol):
        return _draw_values_grid(explanations, ids, legends or names, bool(signed), vmax,
                                 per_row, panel, fmt, atom_labels, colorbar)
    if not len(explanations):
        raise ValueError("no molecule to draw")
    ok = [e for e in explanations if e.status == "ok"]
    if signed is None:
        signed = bool(ok) and all(e.has_signed for e in ok)
    labels = _grid_labels(len(explanations), ids, names)
    mols, values, legends, neutral, instances, failures = zip(
        *(_panel(e, label, signed) for e, label in zip(explanations, labels)))
    drawn = [v for v, flat in zip(values, neutral) if not flat]
    first = ok[0] if ok else None
    title = colorbar_label(signed, *((first.target_name, first.units) if first else ()))
    scale = ColorScale.shared(drawn, signed, vmax, title)
    note = ("legend: prediction = baseline + (sum of contributions)"
            if signed and any(e.baseline is not None for e in ok) else "")
    names = {getattr(e, "baseline_name", "") for e in ok if e.baseline is not None}
    if note and len(names) == 1 and (name := names.pop()):
        note += f"; baseline: {name}"
    if signed and ok and all(getattr(e, "has_atom_level", False) for e in ok):
        title += " per atom"
    return _grid(mols, values, legends, scale, neutral, instances, per_row, panel, fmt,
                 atom_labels, colorbar, note, failures)


def _panel(e, label: str, signed: bool) -> tuple:
    """(molecule, atom values, legend, neutral?, atoms per instance, failure message) of one
    grid panel; a failed row's panel shows its message where the molecule would be."""
    if e.status != "ok":
        return Chem.Mol(), np.zeros(0), f"{label}: failed", True, None, e.error or "failed"
    return (e._heavy_mol(), e.atom_values(signed), e.caption(label, signed, short=True),
            e.draws_neutral(signed), e.drawn_groups(signed), "")


def shared_vmax(explanations: Sequence, signed: bool | None = None) -> float:
    """The largest |atom value| drawn over several explanations: :func:`draw_grid`'s default
    scale; pass it as ``vmax`` to each ``Explanation.draw`` so that separate pictures (a
    report) share one scale. Failed and neutral (flat-weight) explanations are skipped."""
    ok = [e for e in explanations if e.status == "ok"]
    if signed is None:
        signed = bool(ok) and all(e.has_signed for e in ok)
    values = [e.atom_values(signed) for e in ok if not e.draws_neutral(signed)]
    return ColorScale.shared(values, signed).vmax


def _grid_labels(n: int, ids: Sequence | None, names: Sequence[str] | None) -> list[str]:
    for given, what in ((ids, "ids"), (names, "names")):
        if given is not None and len(given) != n:
            raise ValueError(f"{len(given)} {what} for {n} explanations")
    labels = []
    for i in range(n):
        parts = [str(ids[i]) if ids is not None else "", names[i] if names is not None else ""]
        labels.append(" ".join(p for p in parts if p) or f"#{i}")
    return labels


def _draw_values_grid(mols, values, legends, signed, vmax, per_row, panel, fmt, atom_labels,
                      colorbar):
    """The older form: molecules and per-atom values, on one shared scale."""
    if values is None or len(values) != len(mols):
        raise ValueError("give one array of atom values per molecule")
    values = [np.asarray(v, dtype=float) for v in values]
    scale = ColorScale.shared(values, signed, vmax)
    return _grid(mols, values, list(legends) if legends else [""] * len(mols), scale,
                 [False] * len(mols), None, per_row, panel, fmt, atom_labels, colorbar, "")


@lru_cache(maxsize=1)
def _3dmol_js() -> str:
    return (resources.files("qsarmil") / "static" / "3Dmol-min.js").read_text()


def conformer_note(weights: Sequence[float]) -> str:
    """One line on whether a conformer stands out (the :func:`is_flat` rule, numbers given)."""
    weights = np.asarray(weights, dtype=float)
    n = len(weights)
    top = float(weights.max()) if n else 0.0
    if is_flat(weights):
        return (f"no conformer stands out: max weight {top:.3f} < {FLAT_RATIO:g} x 1/{n}")
    return (f"key conformer {int(np.argmax(weights))}: weight {top:.3f} >= "
            f"{FLAT_RATIO:g} x 1/{n}")


def view_conformers(mol: Chem.Mol, weights: Sequence[float], width: int = 500, height: int = 400,
                    faded_opacity: float = 0.2, js: str | None = None, labels: bool = True):
    """A py3Dmol view of all conformers, with each conformer's weight written on screen.

    A key conformer (solid, coloured; the others faded) is marked only when it stands out
    (:func:`is_flat` is False); otherwise every conformer is drawn alike. ``js``: where the
    browser loads 3Dmol.js from (py3Dmol's default if None).
    """
    import py3Dmol

    weights = np.asarray(weights, dtype=float)
    conf_ids = [c.GetId() for c in mol.GetConformers()]
    if len(conf_ids) != len(weights):
        raise ValueError(f"{len(weights)} weights for {len(conf_ids)} conformers")
    key = None if is_flat(weights) else int(np.argmax(weights))
    view = py3Dmol.view(width=width, height=height, **({"js": js} if js else {}))
    for k, conf_id in enumerate(conf_ids):
        view.addModel(Chem.MolToMolBlock(mol, confId=conf_id), "sdf")
        if k == key:
            style = {"stick": {"colorscheme": "orangeCarbon", "radius": 0.2}}
        elif key is None:
            style = {"stick": {"color": "grey", "opacity": 0.5, "radius": 0.15}}
        else:
            style = {"stick": {"color": "grey", "opacity": faded_opacity, "radius": 0.12}}
        view.setStyle({"model": k}, style)
    if labels:
        _conformer_labels(view, weights)
    view.zoomTo()
    return view


def _conformer_labels(view, weights: np.ndarray, max_lines: int = 12) -> None:
    """Screen-fixed text: the key-conformer note and the weights, largest first."""
    lines = [conformer_note(weights)]
    order = np.argsort(-weights, kind="stable")
    lines += [f"conformer {k}: weight {weights[k]:.3f}" for k in order[:max_lines]]
    if len(weights) > max_lines:
        lines.append(f"... {len(weights) - max_lines} more in the instance table")
    for row, text in enumerate(lines):
        view.addLabel(text, {"useScreen": True, "position": {"x": 8, "y": 8 + 16 * row, "z": 0},
                             "fontSize": 11, "fontColor": "black", "backgroundOpacity": 0.0,
                             "inFront": True})


def conformers_html(mol: Chem.Mol, weights: Sequence[float], title: str = "",
                    **view_kwargs) -> str:
    """A standalone HTML page with the 3-D view; 3Dmol.js is inlined, so it opens offline."""
    view = view_conformers(mol, weights, **view_kwargs)
    body = view.write_html()  # the viewer div + script; it only fetches 3Dmol.js if absent
    inline = (f"<script>{_3dmol_js()}</script>\n"
              "<script>var $3Dmolpromise = Promise.resolve();</script>\n")
    note = html.escape(conformer_note(weights))
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title>{inline}</head><body>\n<h3>{html.escape(title)}</h3>\n<p>{note}</p>\n"
            f"{body}\n</body></html>")
