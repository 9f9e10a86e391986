"""The report's pairs section: two analogues of the report side by side (:mod:`qsarmil.pairs`).

For each pair ``(i, j)`` of the report's molecules: a table row with the predicted difference
``i - j`` split into the changed atoms' part and the context's, the measured difference where
both values are given, and one drawing per pair (the change in gold; each molecule measured
against the other, where the model allows it) on the report's colour scale. A pair that
cannot be compared (a molecule that failed, a classifier) keeps its row, with the reason.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from .report_plots import inline_svg

__all__ = ["checked_pairs", "pairs_section"]


def checked_pairs(pairs: Sequence, n: int) -> list[tuple[int, int]]:
    """``pairs`` as a list of ``(i, j)`` positions among ``n`` molecules, each checked.

    Raises
    ------
    ValueError
        For a pair that is not two different integer positions in ``range(n)``.
    """
    out = []
    for k, pair in enumerate(pairs):
        try:
            i, j = pair
        except (TypeError, ValueError):
            raise ValueError(f"pair {k}: {pair!r} is not two molecule positions") from None
        for p in (i, j):
            if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) or not (
                    0 <= p < n):
                raise ValueError(f"pair {k}: {p!r} is not a molecule position in 0..{n - 1}")
        if i == j:
            raise ValueError(f"pair {k}: a molecule compared with itself ({i})")
        out.append((int(i), int(j)))
    return out


def _cell(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "<td data-sort=''></td>"
    return f"<td class='num' data-sort='{value!r}'>{value:+.2f}</td>"


def pairs_section(model, smiles: Sequence[str], pairs: list[tuple[int, int]],
                  labels: Sequence[str], measured: Sequence[float | None],
                  vmax: float | None) -> str:
    """HTML of the pairs: a sortable table, then one drawing per compared pair.

    Parameters
    ----------
    model : fitted QSARModel
    smiles, labels, measured
        The report's molecules, their labels ("" where none) and measured values (None where
        unknown).
    pairs : list of (int, int)
        Positions into ``smiles`` (see :func:`checked_pairs`); differences are ``i - j``.
    vmax : float, optional
        The report's full-colour value, so that pairs share the report's scale.
    """
    from .pairs import compare

    if not pairs:
        return ""
    units = ""
    rows, pictures = [], []
    for k, (i, j) in enumerate(pairs):
        names = (labels[i] or f"#{i}", labels[j] or f"#{j}")
        head = (f"<td class='num'>{k}</td><td><a href='#mol{i}'>{html.escape(names[0])}</a></td>"
                f"<td><a href='#mol{j}'>{html.escape(names[1])}</a></td>")
        try:
            pair = compare(model, smiles[i], smiles[j], measured[i], measured[j])
        except ValueError as exc:  # MoleculeError included: the row stays, with the reason
            rows.append(f"<tr>{head}{'<td></td>' * 4}<td>failed: {html.escape(str(exc))}</td>"
                        f"</tr>")
            continue
        units = pair.units
        rows.append(f"<tr>{head}{_cell(pair.predicted_difference)}{_cell(pair.changed_part)}"
                    f"{_cell(pair.context_part)}{_cell(pair.measured_difference)}"
                    f"<td>{len(pair.changed_a)} + {len(pair.changed_b)} atoms changed</td></tr>")
        picture = inline_svg(pair.draw(vmax=vmax, names=names))
        pictures.append(f"<section id='pair{k}'><h3>{html.escape(f'pair {k}: {names[0]} - {names[1]}')}"
                        f"</h3><p>{html.escape(pair.summary())}</p>{picture}</section>")
    unit = f" ({units})" if units else ""
    headers = ["pair", "a", "b", f"predicted a - b{unit}", "change", "context",
               f"measured a - b{unit}", "note"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    intro = ("Each pair's predicted difference splits exactly into the part carried by the "
             "changed atoms (outside the common substructure, drawn in gold) and the part the "
             "model reads in the shared context. Where the model splits a difference over atoms "
             "(the default regression model does), the drawings measure each molecule against "
             "the other: atoms whose features are the same in both are uncoloured, and a "
             "difference a shared atom's features take in from the change is drawn on the "
             "changed atoms it comes from.")
    return (f"<h2 id='pairs'>Pairs</h2><p>{html.escape(intro)}</p><table class='sortable'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"{''.join(pictures)}")
