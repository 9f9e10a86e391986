"""Every ```python and ```bash block of README.md runs as written.

Python blocks of one ``##`` section run in order in one fresh interpreter (later blocks use
earlier blocks' variables, as a reader would type them), in an empty folder. Bash blocks run
with ``bash -euo pipefail`` in an empty folder, with this environment's commands on PATH.
Some blocks need something from outside the README: a file the reader is assumed to have, or
KNIME's ``knio`` module. The test makes those first (``SETUP``), in plain sight. Blocks that are
not run here are listed in ``EXEMPT`` with the reason, and the list is checked against the README,
so it cannot go stale.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # deselect with -m 'not slow' for a quick loop

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# (page, heading above the block, start of its first line) -> why the block is not run here
EXEMPT = {
    ("README.md", "## Quick start", "# 1. set up and run the main job"):
        "sets up the environment and runs the whole test suite: this is what CI runs",
    ("docs/getting-started.md", "## The two commands", "# 1. set up and run the main job"):
        "the README's quick start, on the site",
    ("docs/guide/batch-scoring.md", "### A full round trip", "# A training table and a query table"):
        "run as written by tests/test_readme.py, which also checks its output files",
    ("README.md", "## Tutorials", "source .venv/bin/activate"):
        "installs packages and starts a JupyterLab server; tests/test_tutorials.py runs the notebooks",
    ("docs/getting-started.md", "## Tutorials", "source .venv/bin/activate"):
        "the README's tutorials section, on the site",
}


def exempt(block) -> bool:
    return any((block.page, block.heading) == (page, h) and block.code.startswith(start)
               for page, h, start in EXEMPT)


@dataclass
class Block:
    lang: str
    section: str      # what runs in one interpreter: a README "## " section, or a docs page
    heading: str      # the nearest heading of any level
    code: str
    line: int
    page: str = "README.md"



def readme_blocks(text: str, page: str = "README.md") -> list[Block]:
    """Python and bash blocks of a Markdown page. README sections run apart; a docs page runs
    top to bottom in one interpreter (its section is the page)."""
    blocks, section, heading = [], page, ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"```(\w*)\s*$", line)
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if fence.group(1) in ("python", "bash"):
                blocks.append(Block(fence.group(1), section, heading,
                                    "\n".join(lines[i + 1:end]) + "\n", i + 1, page))
            i = end + 1
            continue
        if re.match(r"#{1,4} ", line):
            heading = line.strip()
            if line.startswith("## ") and page == "README.md":
                section = heading
        i += 1
    return blocks


PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [b for path in PAGES
          for b in readme_blocks(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
RUN = [b for b in BLOCKS if not exempt(b)]
PYTHON_SECTIONS = list(dict.fromkeys(b.section for b in RUN if b.lang == "python"))
BASH = [b for b in RUN if b.lang == "bash"]

# ------------------------------------------------------------------------- what blocks assume

KNIO_STAND_IN = """
import sys, types
import pandas as pd
from qsarmil import QSARModel, load_dataset

_train = load_dataset("solubility").head(40)   # the folder the round trip above saves
QSARModel().fit(_train.smiles, _train.target).save("sol_model", overwrite=True)

class _Table:                       # stand-in for knime.scripting.io.Table
    def __init__(self, df): self.df = df
    def to_pandas(self): return self.df.copy()
    @classmethod
    def from_pandas(cls, df): return cls(df)

_knio = types.ModuleType("knime.scripting.io")
_knio.input_tables = [_Table(load_dataset("solubility").head(5)[["smiles"]])]
_knio.output_tables = [None]
_knio.flow_variables = {"model_folder": "sol_model"}     # saved by the Chemistry block
_knio.Table = _Table
sys.modules.update({"knime": types.ModuleType("knime"),
                    "knime.scripting": types.ModuleType("knime.scripting"), "knime.scripting.io": _knio})
"""

SHELL_FILES = """
from rdkit import Chem
from qsarmil import load_dataset
import gzip

ace = load_dataset("CHEMBL2835_Ki").head(40).reset_index(drop=True)
table = ace.rename(columns={"smiles": "SMILES", "target": "pIC50"})[["SMILES", "pIC50"]]
table.insert(0, "ID", [f"C{i:03d}" for i in range(len(table))])
table.to_csv("data.csv", index=False)
with Chem.SDWriter("actives.sdf") as out:
    for i, row in ace.iterrows():
        mol = Chem.MolFromSmiles(row.smiles)
        mol.SetProp("class", "active" if row.target > ace.target.median() else "inactive")
        out.write(mol)
with gzip.open("molecules.sdf.gz", "wt") as out, Chem.SDWriter(out) as sdf:
    for i, smi in enumerate(ace.smiles[:10]):
        mol = Chem.MolFromSmiles(smi)
        mol.SetProp("ID", f"M{i:03d}")
        sdf.write(mol)
with gzip.open("molecules.csv.gz", "wt") as out:
    out.write("smiles\\n" + "\\n".join(ace.smiles[10:20]) + "\\n")
"""

PAIR_FILES = """
from qsarmil import QSARModel, load_dataset

data = load_dataset("solubility").head(40)
QSARModel(uncertainty=None).fit(data.smiles, data.target).save("my_model")
with open("pairs.csv", "w") as out:
    out.write("smiles_a,smiles_b,pKi_a,pKi_b\\nCc1ccc(O)cc1,Oc1ccccc1,6.1,5.2\\nCCO,CCN,NA,4.0\\n")
"""

# heading of the block -> code run just before it (Python) or Python run before the block (bash)
SETUP = {
    "## Two analogues side by side/bash": PAIR_FILES,  # --pairs needs a model and a pairs table
    "### A full round trip": KNIO_STAND_IN,    # the KNIME node body comes after the round trip
    "# Batch scoring, Excel and KNIME/bash": SHELL_FILES,  # `qsarmil train data.csv ...` needs data.csv
}


def env() -> dict:
    # One BLAS/torch thread: small fits run far faster so on a shared 2-core machine.
    return dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg",
                PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def run_python(code: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    script = cwd / "readme_snippets.py"
    script.write_text(code, encoding="utf-8")
    return subprocess.run([sys.executable, str(script)], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------------------------ tests


def test_exemptions_name_real_blocks():
    for page, heading, start in EXEMPT:
        found = [b for b in BLOCKS
                 if (b.page, b.heading) == (page, heading) and b.code.startswith(start)]
        assert len(found) == 1, f"exempt block not found (or not unique) in {page}: {heading} {start}"


def test_every_block_is_run_or_exempt():
    assert len(RUN) + len(EXEMPT) == len(BLOCKS)
    assert {b.lang for b in RUN} == {"python", "bash"}
    assert {"docs/guide/engine.md", "docs/guide/chemistry.md", "docs/guide/explanations.md",
            "## A first model"} <= set(PYTHON_SECTIONS)


@pytest.mark.parametrize("section", PYTHON_SECTIONS, ids=lambda s: s.replace("## ", "README/"))
def test_python_blocks_run(section, tmp_path):
    parts = []
    for block in (b for b in RUN if b.lang == "python" and b.section == section):
        parts.append(f"# --- {block.page} line {block.line} ({block.heading})\n")
        parts.append(SETUP.get(block.heading, ""))
        parts.append(f"print('{block.page} block at line {block.line} starts', flush=True)\n")
        parts.append(block.code)
    done = run_python("".join(parts), tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    promised = {"docs/guide/explanations.md": ("mol.html", "report.html"),   # files the snippets make
                "docs/guide/chemistry.md": ("sol_model/qsarmil.json", "own_model/qsarmil.json"),
                "docs/guide/engine.md": ("model.safetensors",),
                "docs/getting-started.md": ("aspirin.svg",)}
    for name in promised.get(section, ()):
        assert (tmp_path / name).stat().st_size > 0, name


@pytest.mark.parametrize("block", BASH, ids=lambda b: f"{b.page}:{b.line}")
def test_bash_blocks_run(block, tmp_path):
    setup = SETUP.get(f"{block.heading}/bash")
    if setup:
        made = run_python(textwrap.dedent(setup), tmp_path)
        assert made.returncode == 0, made.stderr[-3000:]
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
