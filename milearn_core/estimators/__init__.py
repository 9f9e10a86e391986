"""scikit-learn estimators for multi-instance learning."""

from .classical import BagWrapper, InstanceWrapper, MISVM, embed_bags
from .neural import MILClassifier, MILRegressor

__all__ = ["BagWrapper", "InstanceWrapper", "MILClassifier", "MILRegressor", "MISVM", "embed_bags"]
