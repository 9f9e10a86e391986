"""An HTML report for a set of molecules: predictions, instance weights and drawings.

One self-contained file (inline SVG, no scripts, no server) that any browser opens offline.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence

from milearn_core.persist import atomic_path

__all__ = ["render_report", "write_report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; }
section { border-top: 1px solid #999; margin-top: 1.5em; padding-top: 0.5em; }
.failed { color: #a00; }
"""


def _probabilities(model, smiles: list) -> tuple[list[str], list[list[str]]]:
    """Classifiers: ``proba_<class>`` headers and each row's probabilities as text."""
    if getattr(model, "task_", None) != "classification":
        return [], [[] for _ in smiles]
    table = model.predict_table(smiles)
    columns = [c for c in table.columns if c.startswith("proba_")]
    rows = [["" if v != v else f"{v:.3f}" for v in row] for row in table[columns].to_numpy()]
    return columns, rows


def render_report(model, smiles: Sequence[str], title: str = "qsarmil report") -> str:
    """HTML text of the report for ``smiles`` scored by a fitted QSARModel (classifiers: with
    a probability column per class)."""
    smiles = list(smiles)
    explanations = model.explain(smiles)
    proba_headers, probabilities = _probabilities(model, smiles)
    rows = []
    for i, e in enumerate(explanations):
        pred = "" if e.status != "ok" else html.escape(e.legend().removeprefix("prediction "))
        proba = "".join(f"<td>{p}</td>" for p in probabilities[i])
        rows.append(f"<tr><td><a href='#mol{i}'>{i}</a></td><td>{html.escape(e.smiles)}</td>"
                    f"<td>{pred}</td>{proba}<td>{e.status}</td><td>{html.escape(e.error)}</td></tr>")
    sections = []
    for i, e in enumerate(explanations):
        body = (f"<p class='failed'>failed: {html.escape(e.error)}</p>" if e.status != "ok"
                else e._repr_html_())
        sections.append(f"<section id='mol{i}'><h2>{i}: {html.escape(e.smiles)}</h2>{body}</section>")
    raised = ("the prediction" if not proba_headers
              else f"the probability of {proba_headers[1].removeprefix('proba_')}"
              if len(proba_headers) == 2 else "the probability of the predicted class")
    signed_note = (f"Colours: red fragments raise {raised}, blue ones lower it."
                   if any(e.has_signed for e in explanations)
                   else "Colours: darker fragments carry more weight.")
    proba_cells = "".join(f"<th>{html.escape(h)}</th>" for h in proba_headers)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>{len(explanations)} molecules. {signed_note}</p>"
            f"<table><tr><th>#</th><th>SMILES</th><th>prediction</th>{proba_cells}<th>status</th>"
            f"<th>error</th></tr>{''.join(rows)}</table>{''.join(sections)}</body></html>")


def write_report(model, smiles: Sequence[str], path: str | os.PathLike,
                 title: str = "qsarmil report") -> None:
    """Write the report to ``path`` atomically."""
    page = render_report(model, smiles, title)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
