"""The documented round trip runs as written, in a fresh folder, with the installed commands;
the benchmark tables the README and the docs site show are the saved runs."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # deselect with -m 'not slow' for a quick loop

README = Path(__file__).resolve().parents[1] / "README.md"
DOCS = README.parent / "docs"


def _block_after(heading: str, page: Path) -> str:
    text = page.read_text(encoding="utf-8")
    after = text[text.index(heading):]
    return re.search(r"```bash\n(.*?)```", after, re.S).group(1)


def test_round_trip_block_runs_as_written(tmp_path):
    block = _block_after("### A full round trip", DOCS / "guide" / "batch-scoring.md")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RMSE" in done.stdout and "R²" in done.stdout      # cross-validated metrics
    with open(tmp_path / "scored.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with open(tmp_path / "query.csv", newline="", encoding="utf-8") as fh:
        query = list(csv.reader(fh))
    assert len(rows) == len(query) == 41
    assert [r[:len(query[0])] for r in rows] == query            # input cells untouched
    assert (tmp_path / "query.sdf").read_text().count("$$$$") == 40
    with zipfile.ZipFile(tmp_path / "scored.xlsx") as book:
        assert len([n for n in book.namelist() if n.startswith("xl/media/")]) == 40
    shown = done.stdout.strip().splitlines()[-4:]                  # the Dask run's first rows
    assert shown[0].split() == ["id", "prediction", "status"] and "ok" in shown[1]


# ------------------------------------------------------- the Results section and the paper table

PAPER_MD = README.parent / "benchmarks" / "results" / "paper.md"
PAPER_JSON = README.parent / "benchmarks" / "results" / "paper.json"


def _paper_module():
    sys.path.insert(0, str(README.parent))
    import benchmarks.paper as paper

    return paper


def test_results_section_shows_the_paper_table():
    paper = _paper_module()
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Results"):text.index("## Benchmarks")]
    shown = section[section.index(paper.TABLE_START):section.index(paper.TABLE_END)]
    assert paper.table_in(shown) == paper.table_in(PAPER_MD.read_text(encoding="utf-8"))
    results = json.loads(PAPER_JSON.read_text(encoding="utf-8"))
    assert not results["quick"]                                   # the README shows a full run
    assert PAPER_MD.read_text(encoding="utf-8") == paper.render_markdown(results)   # md made from json
    assert set(results["tasks"]) == {"digits_or", "digits_mean", "fragment_logp", "ppi", "solubility"}


def test_paper_command_end_to_end_on_tiny_sets(tmp_path, monkeypatch):
    """run_all on tiny sets: every task and variant gets figures; files and README update."""
    import torch

    paper = _paper_module()
    monkeypatch.setitem(paper.SIZES, "quick", {"digits": 80, "logp": 150, "ppi": 80})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = paper.run_all(quick=True, seed=0, n_jobs=1, log=lambda line: None)
    finally:
        torch.set_num_threads(threads)
    assert results["tasks"]["digits_or"]["bags"] == 80 and results["tasks"]["ppi"]["test"] == 20
    for name, res in results["tasks"].items():
        first, second = paper.metric_names(name)
        for side in ("default", "baseline"):
            assert np.isfinite(res[side][first]) and np.isfinite(res[side][second]), (name, side)
            assert res[side]["fit_seconds"] >= 0
    assert len(results["ppi_variants"]) == 3
    md, js = paper.write_results(results, tmp_path)
    assert md.name == "paper_quick.md"
    assert json.loads(js.read_text())["tasks"].keys() == results["tasks"].keys()
    table = paper.table_in(md.read_text())
    assert table.count("\n") == 7
    assert "| Protein-protein interaction | accuracy / KID | 0.990 / 1.000 |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{paper.TABLE_START}\nold\n{paper.TABLE_END}\nrest\n", encoding="utf-8")
    paper.update_readme(results, readme)
    assert paper.table_in(readme.read_text()) == table and "old" not in readme.read_text()

    # --tasks: one row rerun, every other row and the variants kept from the saved run.
    torch.set_num_threads(1)
    try:
        partial = paper.run_all(quick=True, seed=1, n_jobs=1, log=lambda line: None,
                                only=["digits_or"], saved=results)
    finally:
        torch.set_num_threads(threads)
    assert list(partial["rerun"]) == ["digits_or"]
    assert partial["tasks"]["digits_or"] != results["tasks"]["digits_or"]      # seed 1: new figures
    assert {k: v for k, v in partial["tasks"].items() if k != "digits_or"} == \
        {k: v for k, v in results["tasks"].items() if k != "digits_or"}
    assert partial["ppi_variants"] == results["ppi_variants"]
    assert "Rows rerun since (`--tasks`)" in paper.render_markdown(partial)


def test_moleculeace_table_is_the_saved_full_run():
    sys.path.insert(0, str(README.parent / "benchmarks"))
    from moleculeace import markdown

    results = json.loads((README.parent / "benchmarks" / "results" / "moleculeace.json").read_text())
    assert len(results["sets"]) == 30                              # every bundled set, one run
    table = markdown(results["summary"])
    assert table == (README.parent / "benchmarks" / "results" / "moleculeace.md").read_text()
    assert "<!-- results: moleculeace -->" in (DOCS / "benchmarks.md").read_text(encoding="utf-8")


def test_scale_table_and_figure_are_the_saved_full_run(tmp_path):
    sys.path.insert(0, str(README.parent / "benchmarks"))
    from scale import SIZES, markdown, plot

    results = json.loads((README.parent / "benchmarks" / "results" / "scale.json").read_text())
    assert {r["n"] for r in results["fits"]} == set(SIZES)           # every size, one run
    assert markdown(results) == (README.parent / "benchmarks" / "results" / "scale.md").read_text()
    plot(results, tmp_path / "curve.svg")
    assert (tmp_path / "curve.svg").read_text() == (DOCS / "img" / "scale_curve.svg").read_text()
    assert "<!-- results: scale -->" in (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    assert "docs/img/scale_curve.svg" in README.read_text(encoding="utf-8")


def test_hostile_inputs_table_is_the_saved_run():
    sys.path.insert(0, str(README.parent))
    from benchmarks.hostile_inputs import markdown

    results = json.loads((README.parent / "benchmarks" / "results" / "hostile_inputs.json").read_text())
    assert len(results["attacks"]) >= 20 and results["verdict"].startswith("every attack ended")
    table = markdown(results["attacks"], results["verdict"])
    assert table == (README.parent / "benchmarks" / "results" / "hostile_inputs.md").read_text()
    assert "<!-- results: hostile_inputs -->" in (DOCS / "guide" / "safety.md").read_text(encoding="utf-8")


def test_search_tables_are_the_saved_full_run():
    sys.path.insert(0, str(README.parent / "benchmarks"))
    import search

    results = json.loads((README.parent / "benchmarks" / "results" / "search.json").read_text())
    assert not results["quick"]                                   # the docs show a full run
    page = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    section = page[page.index("## Search, zoo and ablations"):page.index("\n## Benchmarks")]
    assert set(search.TABLES) == {"tuning", "imbalance", "digit_rules"}
    for table, render in search.TABLES.items():
        saved = (README.parent / "benchmarks" / "results" / f"search_{table}.md").read_text(encoding="utf-8")
        assert saved == render(results), table
        assert f"<!-- results: search_{table} -->" in section, table
    assert "|---|" not in section                                 # no table typed by hand is left


def test_classification_table_is_the_saved_full_run():
    sys.path.insert(0, str(README.parent / "benchmarks"))
    from classification import markdown

    results = json.loads((README.parent / "benchmarks" / "results" / "classification.json").read_text())
    assert len(results["sets"]) == 30                              # every bundled set, one run
    assert results["summary"]["median"]["default"]["sets"] == 30
    table = markdown(results["summary"])
    assert table == (README.parent / "benchmarks" / "results" / "classification.md").read_text()
    assert "<!-- results: classification -->" in (DOCS / "benchmarks.md").read_text(encoding="utf-8")


def test_attribution_table_is_the_saved_full_run():
    sys.path.insert(0, str(README.parent / "benchmarks"))
    from attribution import markdown

    results = json.loads((README.parent / "benchmarks" / "results" / "attribution.json").read_text())
    assert len(results["sets"]) == 30                              # every bundled set, one run
    assert set(results["tasks"]) == {"alerts", "interaction", "max_fragment", "threshold"}
    for name in ("interaction", "max_fragment", "threshold"):        # chosen on validation alone
        task = results["tasks"][name]
        assert set(task["models"]) == set(task["validation"]) == {"default", "key_fragment"}
        assert task["chosen"] == max(task["validation"], key=task["validation"].get)
        assert task["atom_kid"] == task["models"][task["chosen"]]["atom_kid"]
    assert markdown(results) == (README.parent / "benchmarks" / "results" / "attribution.md").read_text()
    assert "<!-- results: attribution -->" in (DOCS / "benchmarks.md").read_text(encoding="utf-8")


def test_physchem_table_is_the_saved_run():
    sys.path.insert(0, str(README.parent / "benchmarks"))
    from physchem import SETS, markdown

    results = json.loads((README.parent / "benchmarks" / "results" / "physchem.json").read_text())
    assert list(results["sets"]) == list(SETS)                     # both sets, one run
    for res in results["sets"].values():
        assert set(res["models"]) == {"default", "physchem", "chemprop"}
        assert "skipped" not in res["models"]["chemprop"]          # the saved run had chemprop
    table = markdown(results["sets"])
    assert table == (README.parent / "benchmarks" / "results" / "physchem.md").read_text()
    assert "<!-- results: physchem -->" in (DOCS / "benchmarks.md").read_text(encoding="utf-8")


def test_attribution_validation_table_is_the_saved_full_run():
    sys.path.insert(0, str(README.parent / "benchmarks"))
    from attribution_validation import markdown

    saved = README.parent / "benchmarks" / "results"
    results = json.loads((saved / "attribution_validation.json").read_text())
    assert len(results["sets"]) == 30                              # every bundled set, one run
    from qsarmil.recipes import KEY_FRAGMENT_RADIUS

    settings = results["key_fragment_settings"]
    assert set(settings) == {"max_fragment", "threshold"}
    for scores in settings.values():                                 # the recipe's won on both
        assert max(scores, key=scores.get) == f"radius {KEY_FRAGMENT_RADIUS}, slower, longer"
    assert markdown(results) == (saved / "attribution_validation.md").read_text()
    assert "<!-- results: attribution_validation -->" in (DOCS / "benchmarks.md").read_text(encoding="utf-8")
