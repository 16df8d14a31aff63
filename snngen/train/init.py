"""Fluctuation-driven initialisation (Rossbroich, Gygax & Zenke 2022) from the model itself.

Input weights are drawn so that the membrane variable of a neuron receiving ``n`` Poisson
inputs at rate ``nu`` has mean ``mu`` and standard deviation ``sigma`` (relative to rest).
Campbell's theorem gives, for the postsynaptic-potential kernel ``eps(t)`` of one input of
weight 1, ``mean = n nu w_mean int(eps)`` and ``var = n nu (w_std**2 + w_mean**2) int(eps**2)``.
The kernel is not written by hand: it is the impulse response of the model's own discretised
step (:class:`~snngen.derive.step.LearningModel`), threshold and reset ignored, so any model
gets its initialisation from its equations.
"""

from __future__ import annotations

import numpy as np

from ..derive.reference import _compiled, propagator_values
from ..derive.step import LearningModel
from ..errors import SnngenError
from .checks import as_count, as_real


def psp_kernel(lm: LearningModel, params: dict, dt: float, steps: int, rest=None,
               impulse: float = 1e-6) -> np.ndarray:
    """Response of the first state variable, after each step, to a unit input in step 0
    (linearised with a small ``impulse`` around ``rest``, the state at rest, default zeros).
    The input of a step arrives after its update (Brian2's order), so a membrane driven
    through a current starts at 0."""
    steps = as_count(steps, "steps", "psp_kernel")
    dt = as_real(dt, "dt", "psp_kernel", 0, open_low=True)
    impulse = as_real(impulse, "impulse", "psp_kernel", 0, open_low=True)
    comp = _compiled(lm)
    k = len(lm.states)
    p = {key: np.atleast_1d(np.asarray(v, float))[:1] for key, v in params.items()}
    props = propagator_values(lm, p, dt, 1)
    pvals = [p[x.name] for x in lm.params] + [props[x] for x in lm.propagators]
    base = np.zeros((1, k)) if rest is None else np.asarray(rest, float).reshape(1, k)

    def run(kick):
        s, out = base.copy(), []
        for t in range(steps):
            x = np.array([kick if t == 0 else 0.0])
            values = [*s.T, x, *pvals, np.zeros(1, bool), dt]
            s = np.stack([np.broadcast_to(np.asarray(e, float), (1,))
                          for e in comp.next(*values)], axis=1)
            out.append(s[0, 0])
        return np.array(out)
    return (run(impulse) - run(0.0)) / impulse


def fluctuation_driven(lm: LearningModel, params: dict, dt: float, n_inputs: int,
                       rate: float, mu: float, sigma: float, steps: int = 2000):
    """``(w_mean, w_std)`` of input weights that put the membrane at ``mu`` +- ``sigma``."""
    where = "fluctuation_driven"
    n_inputs = as_count(n_inputs, "n_inputs", where)
    rate = as_real(rate, "rate (Hz)", where, 0, open_low=True)
    mu = as_real(mu, "mu", where)
    sigma = as_real(sigma, "sigma", where, 0, open_low=True)
    eps = psp_kernel(lm, params, dt, steps)
    if abs(eps[-1]) > 1e-3 * np.max(np.abs(eps)):
        raise SnngenError(f"fluctuation_driven: the PSP kernel has not decayed after {steps} "
                          "steps; pass a larger `steps`")
    e1, e2 = eps.sum() * dt, (eps ** 2).sum() * dt
    w_mean = mu / (n_inputs * rate * e1)
    var_w = sigma ** 2 / (n_inputs * rate * e2) - w_mean ** 2
    if var_w <= 0:
        raise SnngenError(f"fluctuation_driven: mu={mu} needs so large a mean weight that no "
                          f"spread is left for sigma={sigma}; lower mu or raise sigma")
    return float(w_mean), float(np.sqrt(var_w))
