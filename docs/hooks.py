"""MkDocs hook: benchmark tables come from the saved runs, never typed by hand.

``<!-- results: NAME -->`` in a page becomes ``benchmarks/results/NAME.md``, which the benchmark
script wrote from its JSON (``tests/test_readme.py`` checks each against its JSON). For
``paper``, only the table of that file is shown.
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
PLACEHOLDER = re.compile(r"<!-- results: ([a-z_]+) -->")


def results_table(name: str) -> str:
    """The saved Markdown of one benchmark run (its first table for ``paper``)."""
    text = (RESULTS / f"{name}.md").read_text(encoding="utf-8").strip()
    if name == "paper":
        text = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    return text


def on_page_markdown(markdown: str, **kwargs) -> str:
    return PLACEHOLDER.sub(lambda m: results_table(m.group(1)), markdown)
