"""Ready-made model recipes: a bagger and an estimator chosen for a kind of target.

``physchem_model()``: for whole-molecule physicochemical properties (solubility, hydration free
energy, logD), which depend on logP, size and polarity as much as on fragments. The regression
default's bags (in-parent Morgan environments and atom pairs) plus the atom-additive
``"physchem_atoms"`` values (Crippen logP in positive and negative parts, Crippen MR, TPSA,
Labute ASA), all summed per molecule; kernel ridge with the MinMax, the linear or their sum
chosen by exact leave-one-out error on the training molecules. Every value is additive over
atoms, so each prediction still splits exactly over the fragments (``QSARModel.explain``).
Measured against chemprop in ``benchmarks/physchem.py``.
"""

from __future__ import annotations

from sklearn.base import clone

from milearn_core import BagKernelClassifier, BagKernelRegressor

from .featurize import MoleculeBagger
from .model import QSARModel

__all__ = ["PHYSCHEM_DESCRIPTORS", "PHYSCHEM_KERNELS", "physchem_model"]

PHYSCHEM_DESCRIPTORS = ("morgan_atoms", "atompair_parent", "physchem_atoms")
# The sum of the two kernels won on the training sets' leave-one-out error (solubility 0.290
# against 0.300 for MinMax alone; FreeSolv 0.95 against 1.18); all three stay candidates.
PHYSCHEM_KERNELS = ("minmax", "linear", "minmax+linear")


def physchem_model(task: str = "regression", bagger: MoleculeBagger | None = None,
                   **model_params) -> QSARModel:
    """A :class:`~qsarmil.model.QSARModel` with the physchem recipe.

    Parameters
    ----------
    task : {"regression", "classification"}
        Kernel ridge regression, or the kernel classifier on the same bags.
    bagger : MoleculeBagger, optional
        Its other settings are kept; its ``descriptors`` become ``PHYSCHEM_DESCRIPTORS``.
    **model_params
        Passed on to :class:`~qsarmil.model.QSARModel` (``target_name``, ``units``, ...).

    Returns
    -------
    QSARModel
        Unfitted; it saves and loads as any other (every descriptor set is a named one).
    """
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    bagger = MoleculeBagger() if bagger is None else clone(bagger)
    bagger.set_params(descriptors=PHYSCHEM_DESCRIPTORS)
    estimator = (BagKernelRegressor(kernels=PHYSCHEM_KERNELS) if task == "regression"
                 else BagKernelClassifier(kernels=PHYSCHEM_KERNELS))
    return QSARModel(bagger=bagger, estimator=estimator, task=task, **model_params)
