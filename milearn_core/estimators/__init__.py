"""scikit-learn estimators for multi-instance learning."""

from .additive import AdditiveRegressor
from .classical import MISVM, BagWrapper, InstanceWrapper, embed_bags
from .kernels import BagKernelClassifier, BagKernelRegressor, minmax_kernel
from .neural import MILClassifier, MILRegressor

__all__ = [
    "AdditiveRegressor", "BagKernelClassifier", "BagKernelRegressor", "BagWrapper", "InstanceWrapper",
    "MILClassifier",
    "MILRegressor", "MISVM", "embed_bags", "minmax_kernel",
]
