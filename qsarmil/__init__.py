"""qsarmil: molecules as bags of fragments or conformers for multi-instance QSAR.

``from qsarmil import QSARModel, MoleculeBagger, load_dataset`` works, but the names are
imported lazily (on first use), so that ``import qsarmil`` and ``import qsarmil.cli`` load
neither PyTorch nor RDKit.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "QSARModel": "qsarmil.model",
    "MoleculeBagger": "qsarmil.featurize",
    "load_dataset": "qsarmil.data",
    "list_datasets": "qsarmil.data",
    "MoleculeError": "qsarmil.standardize",
    "write_report": "qsarmil.report",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qsarmil' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
