"""Benchmark scripts.

Most run as ``python benchmarks/NAME.py`` (their folder is then on ``sys.path`` and they import
``from _common import ...``); ``python -m benchmarks.paper`` runs them as a package. Importing
the package puts this folder on ``sys.path`` so that both ways resolve ``_common``.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
