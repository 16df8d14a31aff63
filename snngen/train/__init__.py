"""Training pieces that work on the project's own NumPy arrays: optimisers and losses.

The compiled BPTT kernels and the trainer that drives them are not written yet (issue 3);
these parts are complete and tested on their own.
"""

from .losses import cross_entropy, mse, rate_regulariser
from .optim import SGD, Adam, clip_by_norm, constrain

__all__ = ["SGD", "Adam", "clip_by_norm", "constrain", "cross_entropy", "mse",
           "rate_regulariser"]
