"""An HTML report for a set of molecules: a sortable table, drawings on one colour scale.

One self-contained file that any browser opens offline: drawings are inline SVG, fragment
pictures are data URIs, the only scripts are a small table sorter and, for conformer models,
3Dmol.js inlined for the 3-D views. Nothing is fetched from the network.

The table holds one row per input (failed rows with their error): ID and name where given,
the SMILES, the counter-ions and solvents stripped before prediction (where any were), the
numeric prediction (sortable: click a header), class probabilities
(classifiers), the prediction interval drawn as an error bar on one axis for all rows (or the
conformal class set), the measured value where given, the applicability-domain flag with its
reasons (models that have one), the nearest training molecule, and the top contributing
fragments as small structure pictures. With measured values, a plot of predicted against
measured values with each prediction's interval opens the report. The baseline (additive
models) and the units are stated once at the top; ``pairs`` adds a section on pairs of
analogues (:mod:`qsarmil.report_pairs`); every drawing uses one shared colour scale
(:func:`~qsarmil.explain.shared_vmax`), so equal colours mean equal values across molecules.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDepictor
from rdkit.Chem.Draw import rdMolDraw2D

from milearn_core.persist import atomic_path

from .explain import ColorScale, _3dmol_js, colorbar_label, conformer_note, shared_vmax, view_conformers
from .report_pairs import checked_pairs, pairs_section
from .report_plots import axis_range, inline_svg, interval_bar, predicted_vs_measured

__all__ = ["render_report", "write_report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; vertical-align: middle; }
table.sortable th { cursor: pointer; background: #f3f3f3; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.outside { color: #a00; font-weight: bold; }
section { border-top: 1px solid #999; margin-top: 1.5em; padding-top: 0.5em; }
.failed { color: #a00; }
td.fragments { white-space: nowrap; }
.fragment { display: inline-block; text-align: center; font-size: 0.8em; margin: 1px;
            border: 1px solid #ddd; }
.fragment .value { display: block; padding: 1px 0; }
"""

# Click a header to sort by it: numbers by their data-sort value (or text), empty cells last.
_SORTER = """
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-sort');
    if (v === null) { v = cell.textContent.trim(); }
    if (v === '') { return null; }
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function compare(a, b) {
    if (typeof a === typeof b) { return a < b ? -1 : a > b ? 1 : 0; }
    return typeof a === 'number' ? -1 : 1;
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, col) {
      th.addEventListener('click', function () {
        var up = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', up ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r, s) {
          var a = key(r.cells[col]), b = key(s.cells[col]);
          if (a === null || b === null) { return (a === null) - (b === null); }
          return up ? compare(a, b) : compare(b, a);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""


def _is_model(source) -> bool:
    return hasattr(source, "explain") and hasattr(source, "predict_table")


def _probabilities(model, smiles: list) -> tuple[list[str], list[list[float]]]:
    """Classifiers: ``proba_<class>`` headers and each row's probabilities."""
    if model is None or getattr(model, "task_", None) != "classification":
        return [], [[] for _ in smiles]
    table = model.predict_table(smiles)
    columns = [c for c in table.columns if c.startswith("proba_")]
    return columns, table[columns].to_numpy(dtype=float).tolist()


def _labels(n: int, values: Sequence | None, what: str) -> list[str]:
    if values is None:
        return [""] * n
    if len(values) != n:
        raise ValueError(f"{len(values)} {what} for {n} molecules")
    return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in values]


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _prediction_cell(e) -> str:
    """Numeric predictions carry their full value in ``data-sort``; labels sort as text."""
    if e.status != "ok":
        return "<td class='num' data-sort=''></td>"
    number = _number(e.prediction)
    if number is None or isinstance(e.prediction, (bool, np.bool_, str)):
        return f"<td>{html.escape(str(e.prediction))}</td>"
    return f"<td class='num' data-sort='{number!r}'>{number:.2f}</td>"


def _domain_cell(e) -> str:
    if e.status != "ok" or e.domain is None:
        return "<td data-sort=''></td>"
    note = e.domain_note()
    if note:
        reason = html.escape(note.removeprefix("! outside domain: "))
        return f"<td class='outside' data-sort='1' title='{reason}'>outside: {reason}</td>"
    return "<td data-sort='0'>in</td>"


def _sure(e) -> dict:
    return e.reliability or {} if e.status == "ok" else {}


def _interval_cell(e, axis: tuple[float, float]) -> str:
    r = _sure(e)
    low, high = _number(r.get("prediction_lower")), _number(r.get("prediction_upper"))
    if r.get("prediction_set") is not None:
        return f"<td>{{{html.escape(r['prediction_set'].replace('|', ', '))}}}</td>"
    if low is None or high is None:
        return "<td data-sort=''></td>"
    bar = interval_bar(low, float(e.prediction), high, axis)
    return (f"<td class='num' data-sort='{high - low!r}' title='width {high - low:.2f}'>"
            f"{low:.2f} to {high:.2f}<br>{bar}</td>")


def _nearest_cell(e) -> str:
    r = _sure(e)
    if r.get("nearest_1_id") is None:
        return "<td data-sort=''></td>"
    similarity = _number(r.get("nearest_1_similarity"))
    value = r.get("nearest_1_value")
    shown = f"{value:.2f}" if isinstance(value, float) else str(value)
    text = f"{r['nearest_1_id']} (similarity {similarity:.2f}): {shown}"
    if r.get("in_training_set"):
        text = f"in training set; {text}"
    return f"<td data-sort='{similarity!r}'>{html.escape(text)}</td>"


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _fragment_picture(smiles: str, size: tuple[int, int] = (110, 80)) -> str:
    """A small plain drawing of a fragment SMILES (``*`` at cut points), as a data URI."""
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return ""
    try:
        mol.UpdatePropertyCache(strict=False)
        rdDepictor.Compute2DCoords(mol)
    except (RuntimeError, ValueError):
        return ""
    drawer = rdMolDraw2D.MolDraw2DSVG(*size)
    drawer.drawOptions().clearBackground = False
    drawer.DrawMolecule(mol)
    drawer.FinishDrawing()
    return _svg_uri(drawer.GetDrawingText())


def _top_fragments(e, scale: ColorScale, top: int) -> str:
    """The ``top`` instances by |contribution| (or weight), each a picture with its value
    on a background of its colour on the shared scale."""
    if e.status != "ok" or e.is_conformer_bag or top < 1:
        return "<td></td>" if e.status != "ok" or top < 1 else "<td>conformers: see 3-D view</td>"
    column = "contribution" if scale.signed and e.has_signed else "weight"
    values = e.instances[column].to_numpy(dtype=float)
    order = np.argsort(-np.abs(values), kind="stable")[:top]
    cells = []
    for k in order:
        smiles = e.instances.smiles.iloc[k]
        colour = scale.color(values[k]) or (1.0, 1.0, 1.0)
        rgb = ",".join(str(round(255 * c)) for c in colour)
        picture = _fragment_picture(smiles)
        image = f"<img alt='{html.escape(smiles)}' src='{picture}'><br>" if picture else ""
        text = f"{values[k]:+.2f}" if column == "contribution" else f"{values[k]:.2f}"
        cells.append(f"<span class='fragment' title='{html.escape(smiles)}'>{image}"
                     f"<span class='value' style='background: rgb({rgb})'>{text}</span></span>")
    return f"<td class='fragments'>{''.join(cells)}</td>"


def _raised(proba_headers: list[str]) -> str:
    if not proba_headers:
        return "the prediction"
    if len(proba_headers) == 2:
        return f"the probability of {proba_headers[1].removeprefix('proba_')}"
    return "the probability of the predicted class"


def _summary(explanations: list, proba_headers: list[str], scale: ColorScale) -> str:
    """The header paragraph: counts, target and units, baseline, colour meaning (once)."""
    ok = [e for e in explanations if e.status == "ok"]
    failed = len(explanations) - len(ok)
    outside = sum(bool(e.domain_note()) for e in ok)
    salts = sum(bool(getattr(e, "stripped", "")) for e in ok)
    parts = [f"{len(explanations)} molecules, {failed} failed"
             + (f", {outside} outside the applicability domain" if any(e.domain for e in ok)
                else "")
             + (f", {salts} predicted without the counter-ions or solvents stripped from them "
                f"(column 'stripped')" if salts else "") + "."]
    first = ok[0] if ok else None
    if first is not None and not proba_headers:
        units = f" ({first.units})" if first.units else ""
        parts.append(f"Predicted: {first.target_name}{units}.")
    baselines = {e.baseline for e in ok if e.baseline is not None and e.has_signed}
    if len(baselines) == 1:
        # Classifiers with exact contributions split the log-odds, not the probability.
        what = first.target_name.capitalize() if proba_headers else "Prediction"
        names = {e.baseline_name for e in ok if e.baseline is not None and e.has_signed}
        name = f" ({names.pop()})" if len(names) == 1 and "" not in names else ""
        units = "atoms'" if all(e.has_atom_level for e in ok) else "fragments'"
        parts.append(f"{what} = baseline {baselines.pop():.3f}{name} + the sum of the "
                     f"{units} contributions.")
    if scale.signed:
        unit = "atoms" if ok and all(e.has_atom_level for e in ok) else "fragments"
        parts.append(f"Colours: red {unit} raise {_raised(proba_headers)}, blue ones lower "
                     f"it; full colour = {scale.vmax:.3g}, one scale for every picture.")
    else:
        parts.append(f"Colours: darker purple = more instance weight; full colour = "
                     f"{scale.vmax:.3g}, one scale for every picture.")
    return f"<p class='summary'>{html.escape(' '.join(parts))}</p>"


def _section(i: int, e, label: str, signed: bool, vmax: float) -> str:
    heading = f"{i}: {label + ' - ' if label else ''}{e.smiles}"
    if e.status != "ok":
        body = f"<p class='failed'>failed: {html.escape(e.error)}</p>"
    elif e.is_conformer_bag:
        weights = e.instances.weight.to_numpy()
        view = view_conformers(e.mol, weights).write_html()
        body = f"<p>{html.escape(conformer_note(weights))}</p>{view}{_instance_table(e)}"
    else:
        picture = e.draw(signed=signed, vmax=vmax, name=label or None, short=True)
        body = inline_svg(picture)
        body += _instance_table(e)
    return f"<section id='mol{i}'><h2>{html.escape(heading)}</h2>{body}</section>"


def _measured_plot(explanations: list, measured: list[str] | None, level: float | None) -> str:
    """Predicted against measured values with intervals (regression models with intervals)."""
    if not measured or level is None:
        return ""
    rows = [(_number(v), e) for v, e in zip(measured, explanations)
            if e.status == "ok" and _number(v) is not None
            and _number(_sure(e).get("prediction_lower")) is not None]
    if not rows:
        return ""
    first = rows[0][1]
    label = first.target_name + (f" ({first.units})" if first.units else "")
    return predicted_vs_measured([v for v, _ in rows], [float(e.prediction) for _, e in rows],
                                 [_sure(e)["prediction_lower"] for _, e in rows],
                                 [_sure(e)["prediction_upper"] for _, e in rows], label, level)


def _instance_table(e) -> str:
    table = e.instances.drop(columns=["atoms"])
    return table.to_html(index=False, float_format=lambda v: f"{v:.3f}")


def _sources(source, smiles) -> tuple[object | None, list]:
    """(model or None, explanations) from a model and molecules, or from explanations."""
    if _is_model(source):
        if smiles is None:
            raise TypeError("a model needs the molecules to report on")
        smiles = [smiles] if isinstance(smiles, str) else list(smiles)
        return source, source.explain(smiles)
    explanations = list(source)
    if not all(hasattr(e, "status") and hasattr(e, "draw") for e in explanations):
        raise TypeError("expected a fitted QSARModel or a list of Explanation objects")
    return None, explanations


def render_report(source, smiles: Sequence[str] | None = None, title: str = "qsarmil report",
                  *, ids: Sequence | None = None, names: Sequence | None = None,
                  vmax: float | None = None, top: int = 3,
                  measured: Sequence | None = None, pairs: Sequence | None = None) -> str:
    """HTML text of the report.

    Parameters
    ----------
    source : QSARModel or list of Explanation
        A fitted model (then ``smiles`` are explained; classifiers add a probability column
        per class) or explanations from :meth:`QSARModel.explain`.
    ids, names : sequences, optional
        One per molecule, shown in the table and the section headings.
    vmax : float, optional
        The |value| of full colour; default: the largest of the set (:func:`shared_vmax`).
    top : int
        How many top-contributing fragments to picture per row.
    measured : sequence, optional
        One measured value per molecule (None or NaN where unknown): a column, and for
        regression models with intervals, a plot of predicted against measured values.
    pairs : sequence of (int, int), optional
        Positions of two analogues among the molecules (regression models given as
        ``source``): a "Pairs" section with each predicted difference ``i - j`` split into the
        change's part and the context's, the measured difference and a drawing per pair
        (:mod:`qsarmil.report_pairs`).
    """
    model, explanations = _sources(source, smiles)
    n = len(explanations)
    if pairs is not None and model is None:
        raise TypeError("pairs need the model: render_report(model, smiles, pairs=...)")
    pairs = checked_pairs(pairs or [], n)
    id_labels, name_labels = _labels(n, ids, "ids"), _labels(n, names, "names")
    proba_headers, probabilities = _probabilities(model, [e.smiles for e in explanations])
    ok = [e for e in explanations if e.status == "ok"]
    signed = bool(ok) and all(e.has_signed for e in ok)
    vmax = shared_vmax(explanations, signed) if vmax is None else float(vmax)
    first = ok[0] if ok else None
    scale = ColorScale.shared([], signed, vmax, colorbar_label(
        signed, *((first.target_name, first.units) if first else ())))
    has_domain = any(e.domain is not None for e in ok)
    measured_labels = _labels(n, measured, "measured values") if measured is not None else None
    sure = [_sure(e) for e in ok]
    level = next((r.get("interval_level", r.get("set_level")) for r in sure if r), None)
    has_interval = level is not None
    has_nearest = any(r.get("nearest_1_id") is not None for r in sure)
    # one axis for every row's interval bar: the range of all bounds
    axis = axis_range([_number(r.get(k)) for r in sure for k in ("prediction_lower", "prediction_upper")],
                      pad=0.0)
    interval_header = (f"{level:.0%} " + ("set" if "set_level" in sure[0] else "interval")
                       if has_interval else "")
    has_stripped = any(getattr(e, "stripped", "") for e in explanations)
    headers = ["#", "ID", "name", "SMILES", *(["stripped"] if has_stripped else []),
               "prediction", *proba_headers,
               *([interval_header] if has_interval else []),
               *(["measured"] if measured_labels else []),
               *(["domain"] if has_domain else []),
               *(["nearest training molecule"] if has_nearest else []),
               "top fragments", "status", "error"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    rows = []
    for i, e in enumerate(explanations):
        proba = "".join(f"<td>{p:.3f}</td>" if math.isfinite(p) else "<td data-sort=''></td>"
                        for p in probabilities[i])
        domain = _domain_cell(e) if has_domain else ""
        interval = _interval_cell(e, axis) if has_interval else ""
        value = (f"<td class='num'>{html.escape(measured_labels[i])}</td>" if measured_labels
                 else "")
        nearest = _nearest_cell(e) if has_nearest else ""
        stripped = (f"<td>{html.escape(getattr(e, 'stripped', ''))}</td>" if has_stripped
                    else "")
        rows.append(
            f"<tr><td class='num'><a href='#mol{i}'>{i}</a></td>"
            f"<td>{html.escape(id_labels[i])}</td><td>{html.escape(name_labels[i])}</td>"
            f"<td>{html.escape(e.smiles)}</td>{stripped}{_prediction_cell(e)}{proba}{interval}{value}"
            f"{domain}{nearest}{_top_fragments(e, scale, top)}<td>{e.status}</td>"
            f"<td>{html.escape(e.error)}</td></tr>")
    labels = [" ".join(p for p in (a, b) if p) for a, b in zip(id_labels, name_labels)]
    sections = [_section(i, e, labels[i], signed, vmax) for i, e in enumerate(explanations)]
    values = measured_labels or [""] * n
    pair_html = pairs_section(model, [e.smiles for e in explanations], pairs, labels,
                              [_number(v) for v in values], vmax) if pairs else ""
    three_d = (f"<script>{_3dmol_js()}</script><script>var $3Dmolpromise = Promise.resolve();"
               f"</script>" if any(e.is_conformer_bag for e in ok) else "")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style>{three_d}</head><body><h1>{html.escape(title)}</h1>"
            f"{_summary(explanations, proba_headers, scale)}"
            f"{_measured_plot(explanations, measured_labels, level)}"
            f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}"
            f"</tbody></table>{pair_html}{''.join(sections)}<script>{_SORTER}</script>"
            f"</body></html>")


def write_report(source, smiles_or_path, path: str | os.PathLike | None = None,
                 title: str = "qsarmil report", *, ids: Sequence | None = None,
                 names: Sequence | None = None, vmax: float | None = None, top: int = 3,
                 measured: Sequence | None = None, pairs: Sequence | None = None) -> None:
    """Write the report atomically: ``write_report(model, smiles, path)`` or
    ``write_report(explanations, path)``; keywords as :func:`render_report`."""
    if path is None:
        if _is_model(source):
            raise TypeError("write_report(model, smiles, path): the path is missing")
        smiles, path = None, smiles_or_path
    else:
        smiles = smiles_or_path
    page = render_report(source, smiles, title, ids=ids, names=names, vmax=vmax, top=top,
                         measured=measured, pairs=pairs)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
