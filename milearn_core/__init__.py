"""milearn_core: multi-instance learning with a scikit-learn API.

Bags of instances in, bag labels out; per-instance weights say which instances drive each bag.
"""

from .bags import (
    BagError,
    BagMinMaxScaler,
    BagStandardScaler,
    BagTransformer,
    check_bags,
    predicts_from_bag_sums,
)
from .consensus import ConsensusRegressor
from .estimators import (
    MISVM,
    AdditiveRegressor,
    BagKernelClassifier,
    BagKernelRegressor,
    BagWrapper,
    InstanceWrapper,
    MILClassifier,
    MILRegressor,
    minmax_kernel,
)
from .kid import instance_weights, kid_accuracy, kid_spearman, leave_one_out_weights
from .persist import ModelFileError, load_model, save_model
from .search import StepwiseSearchCV, default_search_space
from .training import TrainingDivergedError

__version__ = "0.1.0"

__all__ = [
    "AdditiveRegressor", "BagKernelClassifier", "BagKernelRegressor", "BagError", "BagMinMaxScaler",
    "BagStandardScaler",
    "BagTransformer", "BagWrapper", "ConsensusRegressor",
    "InstanceWrapper", "MILClassifier", "MILRegressor", "MISVM", "ModelFileError",
    "check_bags", "instance_weights", "kid_accuracy", "kid_spearman", "leave_one_out_weights",
    "load_model", "minmax_kernel", "predicts_from_bag_sums", "save_model", "TrainingDivergedError",
    "StepwiseSearchCV", "default_search_space",
]
