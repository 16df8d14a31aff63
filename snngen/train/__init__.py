"""Training pieces that work on the project's own NumPy arrays: optimisers and losses.

A first trainer (:class:`RecurrentClassifier`, :class:`Trainer`) drives the compiled BPTT
kernels of :mod:`snngen.train.bptt` for one recurrent population and a leaky readout.
"""

from .init import fluctuation_driven, psp_kernel
from .losses import cross_entropy, mse, rate_regulariser, spike_count, van_rossum
from .optim import SGD, Adam, clip_by_norm, constrain
from .trainer import RecurrentClassifier, Trainer, spike_raster

__all__ = ["SGD", "Adam", "RecurrentClassifier", "Trainer", "clip_by_norm", "constrain",
           "cross_entropy", "fluctuation_driven", "mse", "psp_kernel", "rate_regulariser",
           "spike_count", "spike_raster", "van_rossum"]
