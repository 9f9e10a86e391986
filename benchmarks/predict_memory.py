"""Peak memory of scoring through the library: does it stay flat as the input grows?

Each measurement runs in a fresh process: a model trained on the bundled solubility set scores
N SMILES (the bundled molecules repeated) through ``QSARModel.predict_table`` (chunked; only the
result table grows) and through ``iter_predict`` (nothing kept). Peak RSS and molecules/second
go to ``benchmarks/results/predict_memory.json``.

    python benchmarks/predict_memory.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = """
import itertools, resource, sys, time
from qsarmil.data import load_dataset
from qsarmil.model import QSARModel
model = QSARModel.load(sys.argv[1])
base = list(load_dataset("solubility").smiles)
n, mode = int(sys.argv[2]), sys.argv[3]
smiles = itertools.islice(itertools.cycle(base), n)  # a stream: the input is never a list
start = time.perf_counter()
if mode == "predict_table":
    rows = len(model.predict_table(smiles))
else:
    rows = sum(len(t) for t in model.iter_predict(smiles))
seconds = time.perf_counter() - start
print(rows, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def measure(model_dir: str, n: int, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, model_dir, str(n), mode], check=True,
                         capture_output=True, text=True).stdout.split()
    rows, seconds, peak = int(out[0]), float(out[1]), float(out[2])
    assert rows == n
    return {"n": n, "mode": mode, "seconds": round(seconds, 1), "molecules_per_s": round(n / seconds),
            "peak_rss_mb": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    from qsarmil.data import load_dataset
    from qsarmil.model import QSARModel

    data = load_dataset("solubility")
    with tempfile.TemporaryDirectory() as tmp:
        QSARModel().fit(data.smiles, data.target).save(Path(tmp) / "model")
        rows = [measure(str(Path(tmp) / "model"), n, mode) for mode in ("iter_predict", "predict_table")
                for n in args.sizes]
    for row in rows:
        print(f"{row['mode']:14s} n={row['n']:7d}  {row['molecules_per_s']:6d} mol/s  "
              f"peak RSS {row['peak_rss_mb']} MB")
    small, large = min(args.sizes), max(args.sizes)
    ratios = {mode: next(r["peak_rss_mb"] for r in rows if r["mode"] == mode and r["n"] == large)
              / next(r["peak_rss_mb"] for r in rows if r["mode"] == mode and r["n"] == small)
              for mode in ("iter_predict", "predict_table")}
    print(f"peak RSS ratio {large} / {small} rows: " +
          ", ".join(f"{m} {r:.2f}x" for m, r in ratios.items()))
    out = Path(__file__).parent / "results" / "predict_memory.json"
    out.write_text(json.dumps({"rows": rows, "peak_ratio": ratios}, indent=2))


if __name__ == "__main__":
    main()
