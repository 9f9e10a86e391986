"""Ready-made model recipes: a bagger and an estimator chosen for a kind of target.

``physchem_model()``: for whole-molecule physicochemical properties (solubility, hydration free
energy, logD), which depend on logP, size and polarity as much as on fragments. The regression
default's bags (in-parent Morgan environments and atom pairs) plus the atom-additive
``"physchem_atoms"`` values (Crippen logP in positive and negative parts, Crippen MR, TPSA,
Labute ASA), all summed per molecule; kernel ridge with the MinMax, the linear or their sum
chosen by exact leave-one-out error on the training molecules. Every value is additive over
atoms, so each prediction still splits exactly over the fragments (``QSARModel.explain``).
Measured against chemprop in ``benchmarks/physchem.py``.

``key_fragment_model()``: for targets set by one fragment rather than a sum over fragments (the
best of the molecule's groups, or whether any one group passes a threshold). Counts of the Morgan
environments of radius 0 and 1 centred on each fragment's atoms in the parent molecule; an MIL
network that scores every fragment and takes the highest score (``pooling="instance_max"``):
in regression the winning fragment carries the prediction and the explanation singles it out;
in classification each class's score is its highest over the fragments (so a fragment that
speaks strongly for the other class can outweigh the one that passes), and each fragment is
weighted by its own probability of the predicted class. The settings
were chosen by validation score on the training molecules of the two such tasks of
:mod:`qsarmil.nonadditive` (``benchmarks/attribution_validation.py``).
"""

from __future__ import annotations

from sklearn.base import clone

from milearn_core import BagKernelClassifier, BagKernelRegressor, MILClassifier, MILRegressor

from .featurize import MoleculeBagger
from .model import QSARModel

__all__ = ["KEY_FRAGMENT_NETWORK", "PHYSCHEM_DESCRIPTORS", "PHYSCHEM_KERNELS",
           "key_fragment_model", "physchem_model"]

PHYSCHEM_DESCRIPTORS = ("morgan_atoms", "atompair_parent", "physchem_atoms")
# The sum of the two kernels won on the training sets' leave-one-out error (solubility 0.290
# against 0.300 for MinMax alone; FreeSolv 0.95 against 1.18); all three stay candidates.
PHYSCHEM_KERNELS = ("minmax", "linear", "minmax+linear")
# Radius 1 and the slower, longer training won on validation score (benchmarks/
# attribution_validation.py): the largest fragment logP, R² 0.843 against 0.757 with the network's
# defaults and 0.673 at radius 2 with the same training; a fragment-TPSA threshold, accuracy 0.947
# against 0.931 and 0.912.
KEY_FRAGMENT_RADIUS = 1
KEY_FRAGMENT_NETWORK = {"pooling": "instance_max", "learning_rate": 1e-3, "max_epochs": 300,
                        "patience": 40, "random_state": 0}


def _check_recipe(task: str, model_params: dict) -> None:
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    fixed = sorted({"bagger", "estimator", "task"} & set(model_params))
    if fixed:
        raise ValueError(f"the recipe sets {', '.join(fixed)}; give task and bagger as the "
                         "recipe's own arguments, or build a QSARModel for another estimator")


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
    _check_recipe(task, model_params)
    bagger = MoleculeBagger() if bagger is None else clone(bagger)
    bagger.set_params(descriptors=PHYSCHEM_DESCRIPTORS)
    estimator = (BagKernelRegressor(kernels=PHYSCHEM_KERNELS) if task == "regression"
                 else BagKernelClassifier(kernels=PHYSCHEM_KERNELS))
    return QSARModel(bagger=bagger, estimator=estimator, task=task, **model_params)


def key_fragment_model(task: str = "regression", bagger: MoleculeBagger | None = None,
                       **model_params) -> QSARModel:
    """A :class:`~qsarmil.model.QSARModel` for targets set by one fragment (see the module
    docstring): each output's score is its highest over the fragments.

    Parameters
    ----------
    task : {"regression", "classification"}
        :class:`~milearn_core.MILRegressor` or :class:`~milearn_core.MILClassifier`, both with
        ``KEY_FRAGMENT_NETWORK``'s settings.
    bagger : MoleculeBagger, optional
        Its other settings are kept (it must cut molecules into fragments, without the whole
        molecule as an instance, which could win the maximum); its descriptors
        become in-parent Morgan counts of radius ``KEY_FRAGMENT_RADIUS`` in 2048 dense columns.
    **model_params
        Passed on to :class:`~qsarmil.model.QSARModel` (``target_name``, ``units``, ...).

    Returns
    -------
    QSARModel
        Unfitted. Regression: the winning fragment's contribution is the prediction, the
        others' 0. Classification: each fragment is weighted by its own probability of the
        predicted class, and its contribution is the change in probability without it. Neither
        splits over atoms; pictures colour whole fragments.
    """
    _check_recipe(task, model_params)
    bagger = MoleculeBagger() if bagger is None else clone(bagger)
    if bagger.bag_type == "conformers":
        raise ValueError("key_fragment_model needs fragment bags; the bagger makes conformers")
    if bagger.include_whole:
        raise ValueError("key_fragment_model needs include_whole=False: the whole molecule as an "
                         "instance could win the maximum over fragments")
    bagger.set_params(descriptors=("morgan_parent",), morgan_radius=KEY_FRAGMENT_RADIUS,
                      morgan_size=2048, sparse=False)
    network = MILRegressor if task == "regression" else MILClassifier
    return QSARModel(bagger=bagger, estimator=network(**KEY_FRAGMENT_NETWORK), task=task,
                     **model_params)
