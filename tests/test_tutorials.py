"""The notebooks in tutorials/ run top to bottom on small settings, and are stored without outputs.

Each notebook runs in a fresh folder with nbclient, on a kernel spec written here that starts
this interpreter (``sys.executable -m ipykernel_launcher``), so the run uses the project's
environment whatever kernels the machine has registered. ``QSARMIL_TUTORIAL_QUICK=1`` makes the
notebooks use fewer molecules and bags.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

# deselect with -m 'not slow' for a quick loop; one worker runs every notebook (pytest-xdist)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("notebooks")]

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
KERNEL_CHECK = "import sys\nprint('KERNEL', sys.executable)"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A "python3" kernel spec for this interpreter, first on JUPYTER_PATH, plus quick settings."""
    data = tmp_path_factory.mktemp("jupyter")
    spec = data / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (qsarmil tests)", "language": "python"}))
    # One torch/BLAS thread: on a shared 2-core machine small networks train far faster so.
    return {"JUPYTER_PATH": str(data), "JUPYTER_PLATFORM_DIRS": "1", "QSARMIL_TUTORIAL_QUICK": "1",
            "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}


def execute(path: Path, cwd: Path, env: dict, monkeypatch) -> nbformat.NotebookNode:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_code_cell(KERNEL_CHECK))
    NotebookClient(nb, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def text_of(nb, stream: str = "stdout") -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.outputs if out.output_type == "stream" and out.name == stream)


def figure(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the notebook's output:\n{text[-2000:]}"
    return float(match.group(1))


def test_there_are_tutorials():
    names = [p.name for p in NOTEBOOKS]
    for prefix in ("01_", "02_", "03_", "05_"):
        assert any(n.startswith(prefix) for n in names), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]
        assert "attachments" not in cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path, tmp_path, kernel_env, monkeypatch):
    nb = execute(path, tmp_path, kernel_env, monkeypatch)
    stdout, stderr = text_of(nb), text_of(nb, "stderr")
    # the kernel is this environment's interpreter
    kernel = stdout.rsplit("KERNEL ", 1)[1].strip()
    assert Path(kernel).resolve() == Path(sys.executable).resolve()
    # no warnings on the page: stderr carries at most progress bars
    for line in re.split(r"[\r\n]+", stderr):
        assert not line.strip() or re.match(r"\s*[\w ]+:\s+\d+%\|", line), f"stderr: {line!r}"
    name = path.stem
    if name.startswith("01_"):
        assert figure(r"R² = (-?[\d.]+)", stdout) > 0.75
        assert "same predictions after loading: True" in stdout
        assert (tmp_path / "tutorial_output" / "solubility_report.html").stat().st_size > 10_000
        svgs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if "image/svg+xml" in o.get("data", {})]
        assert len(svgs) >= 2                                   # one molecule, one grid
    elif name.startswith("02_"):
        assert figure(r"R² = (-?[\d.]+)", stdout) > 0.0
        html = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if "3Dmol" in str(o.get("data", {}).get("text/html", ""))]
        assert html, "no 3-D view in the output"
        assert "3Dmol" in (tmp_path / "tutorial_output" / "conformers.html").read_text()
    elif name.startswith("03_"):
        out = tmp_path / "tutorial_output"
        rows, failed = figure(r"scored (\d+) rows", stdout), figure(r"\((\d+) failed", stdout)
        assert failed == 1 and figure(r"(\d+) structure pictures", stdout) == rows - failed
        assert (out / "scored.sdf").read_text().count("$$$$") == rows     # failed rows kept
        assert "KNIME node output:" in stdout
    elif name.startswith("04_"):
        assert figure(r"consensus R² = (-?[\d.]+)", stdout) > 0.0
    elif name.startswith("05_"):
        assert figure(r"digits: accuracy ([\d.]+)", stdout) >= 0.85
        assert figure(r"PPI: accuracy ([\d.]+)", stdout) >= 0.9
        assert figure(r"PPI: accuracy [\d.]+, KID ([\d.]+)", stdout) >= 0.9


def test_readme_links_every_tutorial():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Tutorials"):text.index("\n## ", text.index("## Tutorials") + 3)]
    linked = set(re.findall(r"\]\((tutorials/[^)]+\.ipynb)\)", section))
    assert linked == {f"tutorials/{p.name}" for p in NOTEBOOKS}
    assert "jupyter lab tutorials/" in section and '".[notebooks]"' in section
