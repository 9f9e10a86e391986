"""The documentation site builds with warnings as errors, its tables are the saved runs, and
the README stays short and points at it. (Every code block in it runs in
tests/test_readme_snippets.py.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

pytestmark = pytest.mark.slow  # deselect with -m 'not slow' for a quick loop


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_benchmark_tables_come_from_the_saved_runs(site):
    page = _text((site / "benchmarks" / "index.html").read_text(encoding="utf-8"))
    first_row = (RESULTS / "moleculeace.md").read_text().splitlines()[2]
    cells = [c.strip() for c in first_row.strip("|").split("|")]
    assert " ".join(cells[1:4]) in page             # "0/30 0.658 0.746": the saved run's figures
    assert "<!-- results:" not in (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    safety = _text((site / "guide" / "safety" / "index.html").read_text(encoding="utf-8"))
    assert "gz_long_line" in safety and "max_record_chars" in safety


def test_the_api_reference_is_generated_from_docstrings(site):
    api = _text((site / "reference" / "milearn_core" / "index.html").read_text(encoding="utf-8"))
    assert "BagKernelClassifier" in api and "Calibrated log-odds" in api
    chem = _text((site / "reference" / "qsarmil" / "index.html").read_text(encoding="utf-8"))
    assert "MoleculeBagger" in chem and "custom_descriptors" in chem


def test_every_page_is_in_the_navigation_and_linked_pages_exist(site):
    pages = {p.relative_to(ROOT / "docs").with_suffix("") for p in (ROOT / "docs").rglob("*.md")}
    built = {p.parent.relative_to(site) for p in site.rglob("index.html")}
    assert {Path(str(p).removesuffix("/index").replace("index", ".")) for p in pages} <= built | {Path(".")}


def test_the_readme_is_short_and_links_the_site():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count("\n") <= 250
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).is_file(), target
    assert "docs/getting-started.md" in readme and "docs/reference/milearn_core.md" in readme
