"""Learning derivations: surrogates and the symbolic derivatives of one discrete step.

Nothing here is specific to a neuron model: the derivatives come from the model's own
DiscreteModel by sympy differentiation (see ../shared/LEARNING.md sections 1-2).
"""

from .network import NetworkLearningModel, derive_network
from .step import LearningModel, derive
from .surrogate import SURROGATES, Spike, SurrogateSpec, surrogate, surrogate_spec

__all__ = ["SURROGATES", "LearningModel", "NetworkLearningModel", "Spike", "SurrogateSpec",
           "derive", "derive_network", "surrogate", "surrogate_spec"]
