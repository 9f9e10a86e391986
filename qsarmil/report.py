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


def render_report(model, smiles: Sequence[str], title: str = "qsarmil report") -> str:
    """HTML text of the report for ``smiles`` scored by a fitted QSARModel."""
    explanations = model.explain(list(smiles))
    rows = []
    for i, e in enumerate(explanations):
        pred = "" if e.status != "ok" else html.escape(e.legend().removeprefix("prediction "))
        rows.append(f"<tr><td><a href='#mol{i}'>{i}</a></td><td>{html.escape(e.smiles)}</td>"
                    f"<td>{pred}</td><td>{e.status}</td><td>{html.escape(e.error)}</td></tr>")
    sections = []
    for i, e in enumerate(explanations):
        body = (f"<p class='failed'>failed: {html.escape(e.error)}</p>" if e.status != "ok"
                else e._repr_html_())
        sections.append(f"<section id='mol{i}'><h2>{i}: {html.escape(e.smiles)}</h2>{body}</section>")
    signed_note = ("Colours: red fragments raise the prediction, blue ones lower it."
                   if any(e.has_signed for e in explanations)
                   else "Colours: darker fragments carry more weight.")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>{len(explanations)} molecules. {signed_note}</p>"
            "<table><tr><th>#</th><th>SMILES</th><th>prediction</th><th>status</th>"
            f"<th>error</th></tr>{''.join(rows)}</table>{''.join(sections)}</body></html>")


def write_report(model, smiles: Sequence[str], path: str | os.PathLike,
                 title: str = "qsarmil report") -> None:
    """Write the report to ``path`` atomically."""
    page = render_report(model, smiles, title)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
