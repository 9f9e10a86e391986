"""PyTorch building blocks: segment reductions, pooling operators, the MIL network."""

from .networks import ACTIVATIONS, INSTANCE_POOLINGS, MILNetwork, MILOutput, pooling_names
from .pooling import POOLINGS, make_pooling

__all__ = ["ACTIVATIONS", "INSTANCE_POOLINGS", "MILNetwork", "MILOutput", "POOLINGS",
           "make_pooling", "pooling_names"]
