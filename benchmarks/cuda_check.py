"""Does ``device="cuda"`` train and predict the same as the CPU? (needs a CUDA device)

For every pooling, a regressor and a classifier are fitted with the same seed on the CPU and on
the GPU (dense and sparse bags); the script reports the largest differences of predictions and
instance weights, and checks that a model saved on the GPU loads on the CPU with the same
predictions. Figures go to ``benchmarks/results/cuda_check.json`` (or ``--out``).

    python benchmarks/cuda_check.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from milearn_core import MILClassifier, MILRegressor  # noqa: E402
from milearn_core.datasets import make_digit_bags  # noqa: E402
from milearn_core.nn import pooling_names  # noqa: E402

SETTINGS = dict(hidden_layer_sizes=(64, 32), max_epochs=15, batch_size=16, random_state=0)


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))))


def compare(cls, pooling: str, X, y) -> dict:
    cpu = cls(pooling=pooling, **SETTINGS).fit(X, y)
    start = time.perf_counter()
    gpu = cls(pooling=pooling, device="cuda", **SETTINGS).fit(X, y)
    gpu_seconds = time.perf_counter() - start
    score = "predict_proba" if cls is MILClassifier else "predict"
    pred_cpu, pred_gpu = getattr(cpu, score)(X), getattr(gpu, score)(X)
    w_cpu, w_gpu = cpu.instance_weights(X[:50]), gpu.instance_weights(X[:50])
    with tempfile.TemporaryDirectory() as tmp:
        gpu.save(Path(tmp) / "m.safetensors")
        reloaded = cls.load(Path(tmp) / "m.safetensors", device="cpu")
        reload_diff = _max_diff(getattr(reloaded, score)(X), pred_gpu)
    return {"model": cls.__name__, "pooling": pooling, "sparse": sp.issparse(X[0]),
            "prediction_max_diff": _max_diff(pred_cpu, pred_gpu),
            "weights_max_diff": max(_max_diff(a, b) for a, b in zip(w_cpu, w_gpu)),
            "gpu_saved_cpu_loaded_max_diff": reload_diff,
            "epochs_cpu_gpu": [cpu.n_epochs_, gpu.n_epochs_], "gpu_fit_seconds": round(gpu_seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cuda_check.json"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("cuda_check: no CUDA device here")
    torch.backends.cudnn.deterministic = True
    clf_data = make_digit_bags("or", n_bags=300, bag_size=(3, 8), random_state=0)
    reg_data = make_digit_bags("mean", n_bags=300, bag_size=(3, 8), random_state=1)
    rows = []
    for pooling in pooling_names():
        rows.append(compare(MILRegressor, pooling, reg_data.bags, reg_data.y))
        if not pooling.startswith("instance_sum"):
            rows.append(compare(MILClassifier, pooling, clf_data.bags, clf_data.y))
    sparse = [sp.csr_matrix(b) for b in reg_data.bags]
    rows += [compare(MILRegressor, p, sparse, reg_data.y) for p in ("attention", "instance_sum")]
    for row in rows:
        print(f"{row['model']:13s} {row['pooling']:15s} sparse={row['sparse']!s:5s} "
              f"pred {row['prediction_max_diff']:.2e}  weights {row['weights_max_diff']:.2e}  "
              f"reload {row['gpu_saved_cpu_loaded_max_diff']:.2e}  epochs {row['epochs_cpu_gpu']}")
    summary = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
               "max_prediction_diff": max(r["prediction_max_diff"] for r in rows),
               "max_weights_diff": max(r["weights_max_diff"] for r in rows),
               "max_reload_diff": max(r["gpu_saved_cpu_loaded_max_diff"] for r in rows),
               "rows": rows}
    print({k: v for k, v in summary.items() if k != "rows"})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
