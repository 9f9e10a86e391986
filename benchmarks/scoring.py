"""Batch scoring from the shell: throughput and peak memory of ``qsarmil predict``.

Files of N SMILES (the bundled solubility and FreeSolv molecules repeated, with an id column)
are scored by the command line in a fresh process each, and by a bare loop in the same run:
the model's own featuriser (RDKit parse included) + ``estimator_.predict``, on an in-memory
list, with no reading, writing, row checks or result table. (Parsing with RDKit before the
featuriser would parse every molecule twice: the featuriser takes SMILES or copies a Mol.)
Both use one process (``--n-jobs 1``) and a model trained on the solubility set, saved once
to a temporary folder. Peak RSS is the child's ``ru_maxrss`` (read in a wrapper process per
run, so runs do not mask each other). Both are timed as whole processes (start-up and model
loading included); the bare loop also reports its loop alone.

Targets (issue 10): peak RSS at the largest size within 1.5x of the smallest, and CLI
throughput within 20% of the bare loop. A third run adds to the bare loop what the model returns
besides predictions, its applicability domain (issue 11), to show where the time goes.

    python benchmarks/scoring.py [--sizes 10000 100000] [--n-jobs 1]

Results: ``benchmarks/results/scoring.json``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_results  # noqa: E402

# Runs a command, passes on its output, and reports its wall time and peak RSS (MB) last.
_TIMED = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - start
if done.returncode:
    sys.exit(done.stderr)
print(done.stdout, seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""

# The bare loop: SMILES bagged by the model's featuriser (which parses them with RDKit, once,
# as the CLI does) and predicted by its estimator, chunk by chunk; reports its own time too
# (start-up and model loading excluded).
_BARE = """
import csv, itertools, sys, time
from qsarmil.model import QSARModel
model = QSARModel.load(sys.argv[1])
bagger = model.bagger_.set_params(progress=False, n_jobs=int(sys.argv[3]))
with open(sys.argv[2], newline="") as fh:
    smiles = [row[1] for row in itertools.islice(csv.reader(fh), 1, None)]
start = time.perf_counter()
n = 0
with_domain = sys.argv[4] == "domain" and model.domain_ is not None
for k in range(0, len(smiles), 2000):
    bags = model._scale(bagger.transform(smiles[k:k + 2000]))
    predictions = model.estimator_.predict(bags)
    if with_domain:  # what the model returns besides predictions: its applicability domain
        model.domain_.score([p.mol for p in bagger.provenance_], predictions)
    n += len(predictions)
print(n, time.perf_counter() - start)
"""


def write_input(path: Path, n: int) -> None:
    """A CSV of ``n`` rows: id, smiles (the bundled molecules, repeated)."""
    from qsarmil.data import load_dataset

    base = [*load_dataset("solubility").smiles, *load_dataset("freesolv").smiles]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "smiles"])
        for k, smiles in enumerate(itertools.islice(itertools.cycle(base), n)):
            writer.writerow([f"MOL-{k:07d}", smiles])


def timed(command: list[str]) -> tuple[float, float, list[str]]:
    """Wall seconds and peak RSS (MB) of ``command`` in a fresh process, and its output words."""
    out = subprocess.run([sys.executable, "-c", _TIMED, *command], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[-2]), float(out[-1]), out[:-2]


def score_with_cli(model: Path, source: Path, n: int, n_jobs: int) -> dict:
    out = source.with_name(f"scored-{n}.csv")
    seconds, peak, _ = timed([sys.executable, "-m", "qsarmil.cli", "predict", str(model), str(source),
                           "-o", str(out), "--quiet", "--n-jobs", str(n_jobs)])
    with open(out, newline="") as fh:
        rows = sum(1 for _ in csv.reader(fh)) - 1
    assert rows == n, (rows, n)
    out.unlink()
    return {"n": n, "how": "qsarmil predict", "seconds": round(seconds, 1),
            "molecules_per_s": round(n / seconds), "peak_rss_mb": round(peak)}


def score_bare(model: Path, source: Path, n: int, n_jobs: int, domain: bool = False) -> dict:
    """The bare loop in a fresh process: its wall time (start-up and model loading included, as
    for the CLI), peak RSS, and the time of the loop alone (its own clock). ``domain``: also
    score the applicability domain, as ``QSARModel.predict_table`` (and so the CLI) does."""
    seconds, peak, done = timed([sys.executable, "-c", _BARE, str(model), str(source), str(n_jobs),
                                 "domain" if domain else "none"])
    scored, loop = int(done[-2]), float(done[-1])
    return {"n": n, "how": "bare loop + domain" if domain else "bare loop", "seconds": round(seconds, 1),
            "molecules_per_s": round(n / seconds), "peak_rss_mb": round(peak),
            "loop_seconds": round(loop, 1), "loop_molecules_per_s": round(n / loop), "scored": scored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()
    from qsarmil.data import load_dataset
    from qsarmil.model import QSARModel

    data = load_dataset("solubility")
    rows = []
    with tempfile.TemporaryDirectory(prefix="qsarmil-scoring-") as tmp:
        model = Path(tmp) / "model"
        QSARModel().fit(data.smiles, data.target).save(model)  # solubility, all of it
        for n in sorted(args.sizes):
            source = Path(tmp) / f"smiles-{n}.csv"
            write_input(source, n)
            rows.append(score_with_cli(model, source, n, args.n_jobs))
            rows.append(score_bare(model, source, n, args.n_jobs))
            rows.append(score_bare(model, source, n, args.n_jobs, domain=True))
            print(f"{n:>8d}: CLI {rows[-3]['molecules_per_s']} mol/s, peak {rows[-3]['peak_rss_mb']} MB;"
                  f" bare loop {rows[-2]['molecules_per_s']} mol/s ({rows[-2]['loop_molecules_per_s']} "
                  f"mol/s without start-up); with the domain {rows[-1]['molecules_per_s']} mol/s",
                  flush=True)
            source.unlink()
    small, large = min(args.sizes), max(args.sizes)
    cli = {r["n"]: r for r in rows if r["how"] == "qsarmil predict"}
    bare = {r["n"]: r for r in rows if r["how"] == "bare loop"}
    peak_ratio = cli[large]["peak_rss_mb"] / cli[small]["peak_rss_mb"]
    speed = {n: cli[n]["molecules_per_s"] / bare[n]["molecules_per_s"] for n in cli}
    speed_loop = {n: cli[n]["molecules_per_s"] / bare[n]["loop_molecules_per_s"] for n in cli}
    with_domain = {r["n"]: r for r in rows if r["how"] == "bare loop + domain"}
    speed_domain = {n: cli[n]["molecules_per_s"] / with_domain[n]["molecules_per_s"] for n in cli}
    print(f"\n{'rows':>8s}  {'CLI mol/s':>9s}  {'bare mol/s':>10s}  {'CLI/bare':>8s}  "
          f"{'bare loop only':>14s}  {'CLI/loop':>8s}  {'CLI peak RSS':>12s}  {'bare peak':>9s}")
    for n in sorted(cli):
        print(f"{n:>8d}  {cli[n]['molecules_per_s']:>9d}  {bare[n]['molecules_per_s']:>10d}  "
              f"{speed[n]:>8.2f}  {bare[n]['loop_molecules_per_s']:>14d}  {speed_loop[n]:>8.2f}  "
              f"{cli[n]['peak_rss_mb']:>9d} MB  {bare[n]['peak_rss_mb']:>6d} MB")
    print(f"peak RSS {large} / {small} rows: {peak_ratio:.2f}x (target <= 1.5x); CLI throughput "
          f"{speed[large]:.2f}x the bare loop at {large} rows, both processes timed whole (target "
          f">= 0.80x); {speed_loop[large]:.2f}x the loop alone; {speed_domain[large]:.2f}x a bare "
          "loop that also scores the applicability domain")
    save_results("scoring", {"n_jobs": args.n_jobs, "rows": rows, "peak_ratio": round(peak_ratio, 3),
                             "cli_over_bare": {str(n): round(v, 3) for n, v in speed.items()},
                             "cli_over_bare_loop_only": {str(n): round(v, 3)
                                                         for n, v in speed_loop.items()},
                             "cli_over_bare_with_domain": {str(n): round(v, 3)
                                                           for n, v in speed_domain.items()},
                             "targets": {"peak_ratio_max": 1.5, "cli_over_bare_min": 0.8}})


if __name__ == "__main__":
    main()
