"""Open the HTML report and the 3-D view in headless Chromium (Debian's ``chromium``).

CI installs chromium (scripts/test.sh); elsewhere the test is skipped when it is missing.
"""

import os
import re
import shutil
import subprocess

import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from qsarmil.explain import conformers_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI needs Debian's chromium for the browser tests (scripts/test.sh installs it)")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chromium"),
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=8000",
         "--dump-dom"]


def open_page(path, tmp_path) -> tuple[str, list[str]]:
    """Rendered DOM and the page's console messages."""
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                             path.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    console = re.findall(r"CONSOLE[^\]]*\] (.*)", result.stderr)
    return result.stdout, console


def test_3d_view_loads_without_script_errors(tmp_path):
    mol = Chem.AddHs(Chem.MolFromSmiles("CCCCOc1ccccc1C(=O)N"))
    AllChem.EmbedMultipleConfs(mol, 3, randomSeed=1)
    path = tmp_path / "view.html"
    path.write_text(conformers_html(mol, [0.2, 0.5, 0.3], title="three conformers"))
    dom, console = open_page(path, tmp_path)
    assert "<canvas" in dom  # 3Dmol.js ran and built its WebGL canvas
    assert not re.search(r"<p id=\"3dmolwarning", dom)  # the "failed to load" notice was removed
    assert not [line for line in console if "rror" in line or "Uncaught" in line], console


def test_report_opens_in_a_browser_and_sorts_by_prediction(tmp_path):
    from milearn_core import MILRegressor
    from qsarmil.featurize import MoleculeBagger
    from qsarmil.model import QSARModel
    from qsarmil.report import write_report

    smiles = ["CCO", "CCCCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "OCC(O)CO"]
    model = QSARModel(bagger=MoleculeBagger(morgan_size=256),
                      estimator=MILRegressor(pooling="instance_sum", max_epochs=5, random_state=0))
    model.fit(smiles, [-0.2, 0.9, 1.5, 1.2, 1.4, -1.8])
    path = tmp_path / "report.html"
    molecules = [*smiles, "broken(", "c1ccc2ncccc2c1"]
    ids = [f"ID{i}" for i in range(len(molecules))]
    write_report(model, molecules, path, ids=ids)
    dom, console = open_page(path, tmp_path)
    assert dom.count("<section") == len(smiles) + 2
    assert dom.count("<svg") == len(smiles) + 1
    assert not console, console
    # Click the prediction header (twice: descending) as a user would, then read the order.
    page = path.read_text()
    click = ("<script>var th = Array.prototype.find.call(document.querySelectorAll('th'), "
             "function (h) { return h.textContent === 'prediction'; }); th.click(); th.click();"
             "</script>")
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.replace("</body>", click + "</body>"))
    dom, console = open_page(clicked, tmp_path)
    assert not console, console
    body = dom.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    shown = re.findall(r"<td>(ID\d)</td>", body)
    predictions = dict(zip(ids, model.predict(molecules)))
    expected = sorted((i for i in ids if predictions[i] == predictions[i]),
                      key=lambda i: -predictions[i]) + ["ID6"]
    assert shown == expected, shown  # failed row last
    assert 'aria-sort="descending"' in dom
