"""snngen: a compiler from spiking-network equations to fused, cached sparse kernels.

The pipeline, each stage printable with :func:`show`::

    text -> NeuronModel/SynapseModel -> DiscreteModel -> Program -> source -> compiled

>>> import snngen as sg
>>> lif = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
>>> print(sg.discretise(lif))  # doctest: +NORMALIZE_WHITESPACE
DiscreteModel 'neuron' (method: exact)
  once per run:
    _P: exp(A dt) and its integral, A = [[-1/tau]]
      entries: _P0_0=Phi[0,0]
  every step:
    v <- _P0_0*v
  spike if: v > 1
  on spike: v = 0
"""

__version__ = "0.1.0"

from . import cache, losses, train, units  # noqa: E402
from .cache import CacheWarning  # noqa: E402
from .connectivity import (  # noqa: E402
                           AllToAll,
                           Conv2D,
                           Explicit,
                           FixedInDegree,
                           FixedOutDegree,
                           FixedProbability,
                           OneToOne,
                           Pool2D,
)
from .derive.surrogate import surrogate_spec as surrogate  # noqa: E402
from .errors import (  # noqa: E402
                           BackendUnsupported,
                           CacheError,
                           CheckpointError,
                           ConnectivityError,
                           EquationError,
                           IntegrationError,
                           InvalidValueError,
                           MissingParameterError,
                           NetworkTooLargeError,
                           NumericalError,
                           ShapeError,
                           SnngenError,
                           UnitError,
                           UnknownNameError,
)
from .integrate import DiscreteModel, discretise  # noqa: E402
from .model import NeuronModel, SynapseModel  # noqa: E402
from .runtime.network import Network, Normal, TimedArray, Trainable, Uniform  # noqa: E402
from .runtime.simulator import Simulator  # noqa: E402
from .show import show  # noqa: E402
from .train.network import BPTT  # noqa: E402
from .train.online_network import Online  # noqa: E402
from .train.optim import SGD, Adam  # noqa: E402

__all__ = [
    "Adam", "AllToAll", "BPTT", "BackendUnsupported", "CacheError", "CacheWarning", "Conv2D",
    "CheckpointError", "ConnectivityError", "DiscreteModel", "EquationError", "Explicit",
    "FixedInDegree", "FixedOutDegree", "FixedProbability", "IntegrationError",
    "InvalidValueError", "MissingParameterError", "Network", "NetworkTooLargeError",
    "NeuronModel", "Normal", "NumericalError", "OneToOne", "Online", "Pool2D", "SGD", "ShapeError",
    "Simulator", "SnngenError", "SynapseModel", "TimedArray", "Trainable", "Uniform",
    "UnitError", "UnknownNameError", "cache", "discretise", "losses", "show", "surrogate",
    "train", "units",
]
