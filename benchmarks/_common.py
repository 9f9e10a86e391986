"""Helpers shared by the benchmark scripts: results folder and JSON output."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d")}


def protocol(doc: str) -> str:
    """A benchmark's protocol: its module docstring between the title and the "Run:" line."""
    return doc.split("\n\n", 1)[1].split("\n\nRun:")[0]


def save_run(name: str, results: dict, markdown, full: bool) -> str:
    """Save a run: ``NAME.json`` and the table ``markdown(results)`` as ``NAME.md`` for a full
    run, ``NAME_quick.json`` only for a partial one; returns the table."""
    save_results(name if full else f"{name}_quick", results)
    table = markdown(results)
    if full:
        (RESULTS / f"{name}.md").write_text(table)
    return table


def save_results(name: str, results: dict) -> Path:
    """Write ``results`` (plus machine facts) to benchmarks/results/NAME.json and say so."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **results}, indent=2))
    print(f"saved {path}")
    return path
