"""Hostile input files through ``qsarmil predict``: peak memory, seconds and outcome per attack.

Every attack file of issue 19 (decompression and width bombs, formulas of every kind, record
and row games) is built by the seeded, streaming builders the security tests use
(``tests/hostile_files.py``, ``tests/security/test_input_budgets.py``), then scored by a fresh
``qsarmil predict`` process with a small model. Each row: the file's size, the exit status, the
one error line (or the rows written), the process's peak resident memory (VmHWM) and wall
seconds. Run ``python -m benchmarks.hostile_inputs``; writes ``results/hostile_inputs.json``
and ``results/hostile_inputs.md`` (the README's table).
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "security")]

from hostile_files import inline, row, sd_record, write_xlsx  # noqa: E402
from test_input_budgets import BOMBS, SMALL_BUDGET  # noqa: E402
from test_input_xlsx import FORMULAS, HEADER  # noqa: E402

from benchmarks._common import RESULTS, save_results  # noqa: E402

# Runs qsarmil predict in a fresh process and reports its peak memory (VmHWM) on stderr last.
_RUNNER = """
import re, sys
from qsarmil.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as exc:
    code = exc.code
peak = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(f"@@peak {int(peak) / 1024:.0f} {code}", file=sys.stderr)
"""


def _odd_files(tmp: Path) -> dict[str, Path]:
    """Files that are not bombs but used to lose or change rows."""
    (tmp / "delimiters.sdf").write_text("".join(sd_record(f"m{k}", {"id": f"M{k}"}) + "$$$$ \n"
                                                for k in range(3)))
    (tmp / "whitespace.csv").write_text('smiles\n"CC O"\n"CC\nO"\n"C\tO"\nCCO\n')
    (tmp / "long_error.csv").write_text("smiles\n" + "C(" * 1000 + "C\nCCO\n")
    (tmp / "huge_smiles.csv").write_text("smiles\n" + "C" * 200_000 + "\nCCO\n")
    (tmp / "blank_lines.csv").write_text("smiles\nCCO\n\nCCN\n")
    (tmp / "escapes.csv").write_text("id,smiles\nid\x1b]0;owned\x07,not_a_smiles\n")
    write_xlsx(tmp / "formulas.xlsx", HEADER + FORMULAS)
    write_xlsx(tmp / "far_column_ok.xlsx", row(1, inline("A1", "smiles"), inline("XFD1", "x"))
               + row(2, inline("A2", "CCO")))
    return {p.stem: p for p in sorted(tmp.iterdir()) if p.is_file()}


def _small_model(folder: Path) -> Path:
    from qsarmil.data import load_dataset
    from qsarmil.model import QSARModel

    data = load_dataset("solubility").iloc[:40]
    QSARModel().fit(data.smiles, data.target).save(folder / "model")
    return folder / "model"


def _score(model: Path, path: Path, out: Path, extra: list[str]) -> dict:
    import subprocess

    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _RUNNER, "predict", str(model), str(path), "-o",
                           str(out), "-q", *extra], capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    lines = done.stderr.strip().splitlines()
    peak, code = lines[-1].split()[1:]
    message = lines[-2] if len(lines) > 1 else done.stdout.strip()
    return {"file_bytes": path.stat().st_size, "exit": int(code), "peak_mb": float(peak),
            "seconds": round(seconds, 2), "outcome": message[:300],
            "traceback": "Traceback" in done.stderr, "stderr_lines": len(lines) - 1}


def main() -> None:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = _small_model(tmp)
        (tmp / "bombs").mkdir()
        (tmp / "odd").mkdir()
        attacks = {name: (build(tmp / "bombs"), SMALL_BUDGET.get(name, []))
                   for name, (build, _) in BOMBS.items()}
        attacks.update({name: (path, []) for name, path in _odd_files(tmp / "odd").items()})
        for name, (path, extra) in attacks.items():
            rows[name] = _score(model, path, tmp / "out.csv", extra)
            r = rows[name]
            print(f"{name:26s} {r['file_bytes'] / 1e6:8.2f} MB  exit {r['exit']}  "
                  f"peak {r['peak_mb']:6.0f} MB  {r['seconds']:6.2f} s  {r['outcome'][:90]}")
    worst = max(r["peak_mb"] for r in rows.values())
    verdict = ("every attack ended in rows or one error line, without a traceback; "
               f"peak memory at most {worst:.0f} MB" if all(
                   r["exit"] in (0, 2) and not r["traceback"] and r["stderr_lines"] <= 1
                   for r in rows.values()) else "FAILED: see the rows")
    print(verdict)
    save_results("hostile_inputs", {"attacks": rows, "verdict": verdict})
    (RESULTS / "hostile_inputs.md").write_text(markdown(rows, verdict))


def markdown(rows: dict, verdict: str) -> str:
    """The README's table of a saved run (temp folders left out of the messages)."""
    lines = ["| attack | file | exit | peak RSS | seconds | outcome |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        outcome = re.sub(r"/tmp/\S+/", "", r["outcome"]).replace("|", "\\|")
        outcome = outcome.split(": ", 2)[-1] if outcome.startswith("qsarmil: error:") else outcome
        lines.append(f"| {name} | {r['file_bytes'] / 1e6:.2f} MB | {r['exit']} | {r['peak_mb']:.0f} MB | "
                     f"{r['seconds']:.1f} | {outcome[:120]} |")
    return "\n".join(lines) + f"\n\n{verdict}\n"


if __name__ == "__main__":
    main()
