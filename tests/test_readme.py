"""The README's round trip runs as written, in a fresh folder, with the installed commands."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    after = text[text.index(heading):]
    return re.search(r"```bash\n(.*?)```", after, re.S).group(1)


def test_round_trip_block_runs_as_written(tmp_path):
    block = _block_after("#### A full round trip")
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
