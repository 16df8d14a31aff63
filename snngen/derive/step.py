"""DiscreteModel -> LearningModel: one step as a differentiable function, and its derivatives.

One step of a population (LEARNING.md section 1), for states ``s``, synaptic inputs ``x`` and
parameters ``p``, in Brian2's order (state update, threshold, synaptic input, reset: the same
as the simulation kernels, see the README's "Order within a step")::

    u  = F(s; p)                g = G(u; p)             z = H(g)  (hard; H' := surrogate)
    u' = u + x (on the states that receive input; dropped into an ``(unless refractory)``
         state of a neuron that is refractory or spikes now)
    s_next = u' + z * (R(u'; p) - u')

Propagator entries of the exact integrator (``_P0_0``...) stay symbols: their derivatives with
respect to the parameters they come from are computed numerically (a Frechet derivative of the
matrix exponential, :func:`snngen.derive.reference.propagator_derivative`); every other
derivative is symbolic.

>>> from snngen.model import NeuronModel
>>> from snngen.integrate import discretise
>>> lif = NeuronModel("dv/dt = (I - v) / tau : 1\\ndI/dt = -I / taus : 1",
...                   threshold="v > 1", reset="v = 0")
>>> lm = derive(discretise(lif), inputs=["I"], surrogate="fast_sigmoid")
>>> [str(x) for x in lm.inputs], lm.spike
(['_in_I'], H(I*_P0_1 + _P0_0*v - 1))
>>> lm.next[1]  # the input arrives after the update
I*_P1_1 + _in_I
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import stochastic
from ..errors import BackendUnsupported, SnngenError
from ..integrate import REFRACTORY, DiscreteModel
from ..parse import symbol
from ..symbolic import draws
from .surrogate import Spike, SurrogateSpec, spec

DETACHED = sp.Symbol("_z_detached", real=True)  # the reset's spike, held constant


@dataclass(frozen=True)
class LearningModel:
    """A step ``(s, x; p) -> (s_next, z)`` with its Jacobians, all sympy."""

    discrete: DiscreteModel
    states: tuple[sp.Symbol, ...]
    inputs: tuple[sp.Symbol, ...]       # one per state that receives synaptic input
    input_states: tuple[str, ...]
    params: tuple[sp.Symbol, ...]       # model parameters that appear in the step
    propagators: tuple[sp.Symbol, ...]  # exact-integrator entries (numeric, see module doc)
    spike: sp.Expr                      # z as a function of (s, x, p)
    next: tuple[sp.Expr, ...]
    g: sp.Expr | None                   # the threshold function: spike iff g > 0 (None:
    #                                     a model without threshold never spikes)
    surrogate: SurrogateSpec
    soft_beta: float | None
    detached_next: tuple[sp.Expr, ...] | None = None  # next with the reset's spike a constant
    noise: tuple[sp.Symbol, ...] = ()   # the step's standard normal draws (_N_xi), fixed inputs
    timed: tuple[sp.Symbol, ...] = ()   # time-varying parameters' values (_T_<name>), fixed
    #                                     inputs of each step read after the noise draws

    def jacobian(self, of: str, wrt: str) -> sp.Matrix:
        """``d(of)/d(wrt)`` with ``of`` in {next, spike} and ``wrt`` in {states, inputs,
        params, propagators}; the spike's derivative already holds the surrogate. With
        ``detach_reset`` the reset's spike is differentiated as a constant, then given its
        value."""
        if of == "next" and self.detached_next is not None:
            outs = sp.Matrix(self.detached_next)
        else:
            outs = sp.Matrix(self.next) if of == "next" else sp.Matrix([self.spike])
        if not getattr(self, wrt):
            return sp.zeros(len(outs), 0)
        jac = outs.jacobian(sp.Matrix(getattr(self, wrt))).xreplace({DETACHED: self.spike})
        left = jac.atoms(sp.Derivative, sp.DiracDelta, sp.Subs)
        if left:  # every function of the language has a derivative; a new one must too
            raise SnngenError(f"model '{self.discrete.model.name}': the learning derivation "
                              f"cannot differentiate {sorted(map(str, left))[0]}; use "
                              "functions with a derivative in a model that is trained")
        return jac

    def __str__(self) -> str:
        mode = f"soft, sigmoid(beta g) with beta={self.soft_beta}" if self.soft_beta else \
            f"hard, surrogate '{self.surrogate}'"
        lines = [f"LearningModel '{self.discrete.model.name}' ({mode})",
                 f"  spike z = {self.spike}"]
        lines += [f"  {s}_next = {e}" for s, e in zip(self.states, self.next)]
        jac = self.jacobian("next", "states")
        lines.append("  d s_next / d s:")
        lines += [f"    {list(jac.row(r))}" for r in range(jac.rows)]
        return "\n".join(lines)


def derive(discrete: DiscreteModel, inputs=(), surrogate="fast_sigmoid",
           soft_beta: float | None = None, detach_reset: bool = False,
           noise_as_input: bool = False, input_factors=None, timed=()) -> LearningModel:
    """Derive the differentiable step of ``discrete``.

    ``inputs`` names the states that receive synaptic input (``ge += w`` -> ``["ge"]``);
    ``soft_beta`` switches to the soft forward spike ``sigmoid(beta g)`` used to check
    gradients against finite differences; ``detach_reset`` stops gradients through the reset.
    ``noise_as_input``: white noise enters as fixed inputs, the standard normal draws of each
    step (``_N_xi``, :attr:`LearningModel.noise`), drawn in the forward pass and read again
    by the backward pass (their coefficients are differentiated); otherwise a model with
    noise is refused (the trainers whose kernels do not read the draws).
    ``input_factors``: one expression of the model's states per input (default 1) that
    multiplies it where it arrives, read after the update (``I += w * (E - v_post)`` is the
    input ``sum w z`` into ``I`` with the factor ``E - v``); a state may receive several
    inputs with different factors. ``timed`` names parameters whose value changes from step
    to step (TimedArray inputs; discretise with them ``varying``): each step reads their
    values as fixed inputs (:attr:`LearningModel.timed`), like the noise draws.
    """
    model = discrete.model
    surrogate = spec(surrogate)  # a name or sg.surrogate(name, **params), checked
    if discrete.noise and not noise_as_input:
        raise BackendUnsupported(
            f"model '{model.name}' has white noise ({', '.join(discrete.noise)}): this "
            "trainer does not read noise draws yet; train it in an sg.Network with sg.BPTT "
            "(the noise enters as a fixed input of each run), or without its noise terms")
    if any(draws(e) for e in [discrete.condition, *(e for _, e in discrete.reset)]):
        raise BackendUnsupported(
            f"model '{model.name}' draws random numbers (rand()/randn()) in its threshold or "
            "reset: training through them is not built yet")
    if model.spike_variables:
        raise BackendUnsupported(
            f"model '{model.name}' reads {', '.join(model.spike_variables)}: training "
            "through them is not built yet")
    if model.eqs.constant_over_dt:
        raise BackendUnsupported(
            f"model '{model.name}' has (constant over dt) subexpressions "
            f"({', '.join(model.eqs.constant_over_dt)}): training through them is not built "
            "yet")
    if discrete.refractory is not None and model.refractory_is_condition:
        raise BackendUnsupported(
            f"model '{model.name}' is refractory while a condition holds "
            f"({model.refractory_text!r}): training through it is not built yet; give the "
            "refractory period as a duration")
    silent = model.threshold is None  # a readout: never spikes, z = 0
    if discrete.g is None and not silent:
        raise SnngenError(f"model '{model.name}' has no threshold of the form 'a > b': nothing "
                          "to differentiate through")
    states = tuple(symbol(n) for n in model.state_names)
    for name in inputs:
        if name not in model.state_names:
            raise SnngenError(f"input target '{name}' is not a state of '{model.name}'")
    factors = tuple(sp.Integer(1) for _ in inputs) if input_factors is None \
        else tuple(sp.sympify(f) for f in input_factors)
    seen: dict = {}
    xs = []
    for n in inputs:  # a state's second input (another factor): _in_<state>_1, ...
        seen[n] = seen.get(n, -1) + 1
        xs.append(sp.Symbol(f"_in_{n}" + (f"_{seen[n]}" if seen[n] else ""), real=True))
    xs = tuple(xs)
    consts = dict(discrete.constants)
    u = {x: expr.xreplace(consts) for x, expr in discrete.updates}
    clamped = {symbol(n) for n in model.clamped} if discrete.refractory is not None else set()

    def after(u, spike, gate):
        """u' (synaptic input added after the threshold; ``gate`` for the ``(unless
        refractory)`` states) and the reset of the spike ``spike``."""
        v = dict(u)
        for name, x, factor in zip(inputs, xs, factors):
            v[symbol(name)] += (gate if symbol(name) in clamped else 1) * x * \
                factor.xreplace(u)
        reset = dict(v)
        for target, expr in discrete.reset:
            reset[target] = expr.xreplace(reset)
        return tuple(v[x] + spike * (reset[x] - v[x]) for x in states)

    def spike_of(u):
        if silent:
            return sp.Integer(0)
        g = discrete.g.xreplace(u)
        return 1 / (1 + sp.exp(-soft_beta * g)) if soft_beta else Spike(g, surrogate)

    if discrete.refractory is None:
        z = spike_of(u)
        nxt = after(u, z, 1)
        detached = after(u, DETACHED, 1) if detach_reset else None
    else:
        # two branches: a refractory neuron does not spike and its (unless refractory) states
        # take no input; an active one is refractory from its threshold on, so the input to
        # those states is dropped when it spikes now (Brian2's conditional write)
        rest = {x: e.xreplace({REFRACTORY: sp.true}) for x, e in u.items()}
        act = {x: e.xreplace({REFRACTORY: sp.false}) for x, e in u.items()}
        z_act = spike_of(act)
        z = sp.Piecewise((0, REFRACTORY), (z_act, True))
        branch = lambda a, b: tuple(sp.Piecewise((p, REFRACTORY), (q, True))  # noqa: E731
                                    for p, q in zip(a, b))
        nxt = branch(after(rest, 0, 0), after(act, z_act, 1 - z_act))
        detached = branch(after(rest, 0, 0), after(act, DETACHED, 1 - DETACHED)) \
            if detach_reset else None
    props = tuple(s for p in discrete.propagators for _, s in p.phi + p.psi)
    normals = tuple(stochastic.normal(symbol(n)) for n in discrete.noise)
    g = None if silent else discrete.g.xreplace(u)
    varying = {symbol(n): sp.Symbol(f"_T_{n}", real=True) for n in timed}
    for prop in discrete.propagators:
        if sp.Matrix(prop.a).free_symbols & set(varying):
            raise BackendUnsupported(
                f"model '{model.name}': a time-varying input enters its exact integrator's "
                "matrix; discretise it with method='euler' (or another explicit method)")
    if varying:  # each step's values: fixed inputs read by the kernels
        nxt = tuple(e.xreplace(varying) for e in nxt)
        z = z.xreplace(varying)
        g = None if g is None else g.xreplace(varying)
        detached = None if detached is None else tuple(e.xreplace(varying) for e in detached)
    special = set(states) | set(xs) | set(props) | set(normals) | set(varying.values()) | {
        REFRACTORY, symbol("t"), symbol("dt"), symbol("i"), symbol("N")}
    free = set().union(*(e.free_symbols for e in (*nxt, z)))
    params = tuple(sorted((free - special), key=lambda s: s.name))
    used_props = tuple(p for p in props if p in free)
    return LearningModel(discrete, states, xs, tuple(inputs), params, used_props, z, nxt, g,
                         surrogate, soft_beta, detached, normals, tuple(varying.values()))
