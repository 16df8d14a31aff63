"""Online learning rules on a declared network's graph: each rule a named approximation of
RTRL (LEARNING.md section 3), and the plan that says where it applies.

Every rule keeps, for each trained synapse ``s`` (presynaptic ``j``, postsynaptic neuron ``i``
of a population with states ``s_i``), the neuron-local eligibility vector ``eps_s = d s_i /
d f_s`` (``f_s``: the value the synapse delivers per event; ``d f / d w`` is chained at the
end, as in BPTT), propagated by the postsynaptic neuron's own Jacobian only::

    eps_s(t+1) = J_i(t) eps_s(t) + Jx_i(t)[:, slot] z_j(t - d_s)

``J`` is the model's derived Jacobian (``"full"``: through the surrogate, and through the reset
unless the reset is detached) or the leak alone (``"leak"``: the update without spike and
reset, at rest, a constant). The loss reads one population ``o`` after every step (a readout:
no threshold, no outgoing projection). Its own synapses and parameters get the exact
gradient (``o`` is a leaf: local RTRL is RTRL): ``g_s += delta_i(t+1) . eps_s(t+1)`` with
``delta = d loss_t / d s_o(t+1)``. A hidden neuron's synapse meets a learning signal through
its trace ``e_s(t) = dz_i(t)/ds_i(t) . eps_s(t)``, carried by a small linear filter
``G(t+1) = A G(t) + b e_s(t)`` and read out as ``g_s += sigma_i(t+1) . G(t+1)``:

- ``"readout"`` (e-prop, OSTL, RFLO): ``A`` and ``b`` are the readout's own Jacobians (it must be
  linear with the same decay in every neuron), ``sigma_i = sum_r F_ir delta_r``: exact for a
  hidden population without recurrence that projects into the readout (Bellec et al. 2020);
- ``"instant"`` (D-RTRL, Wang et al. 2025): ``A = 0``: the trace meets the gradient of this
  step's loss only;
- ``"filters"`` (SuperSpike, Zenke & Ganguli 2018): a fixed cascade of exponential filters
  (a van Rossum kernel) and the instantaneous signal;
- ``"local"`` (DECOLLE, Kaiser, Mostafa & Neftci 2020): every hidden population has its own
  fixed random readout of its spikes, ``y_p(t) = z_p(t) R_p``, scored by the same loss
  against the same targets: its gradient is the population's instantaneous signal.

``es_d_rtrl`` (Wang et al. 2025) keeps D-RTRL's eligibility of a synapse as a product of a
postsynaptic and a presynaptic trace, ``eps_s ~ ef_i x_j`` with ``ef_i(t+1) = a J_i ef_i(t) +
(1 - a) Jx_i[:, slot]`` and ``x_j(t+1) = a x_j(t) + z_j(t - d)`` (``a``: the rule's ``decay``):
O(neurons) memory, O(synapses) work per step. ``ottt`` (Xiao et al. 2022) is the leak
Jacobian with this step's signal: a presynaptic trace filtered by the membrane's leak times
the instantaneous gradient of the loss.

``F`` is the feedback: ``"symmetric"``, the values the hidden neurons' own projections into the
readout deliver, or ``"random"``, a fixed random matrix per hidden population.

>>> print(graph_rule("eprop"))
eprop: full local Jacobian, reset detached, surrogate Bellec (gamma 0.3), signal through the \
readout, parameter eligibility yes
>>> print(graph_rule("superspike", dt=1e-3))
superspike: leak local Jacobian, signal through the filters [0.8187, 0.9048], parameter \
eligibility no
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..errors import InvalidValueError, SnngenError, shown

GRAPH_RULES = ("eprop", "ostl", "rflo", "superspike", "d_rtrl", "es_d_rtrl", "ottt", "decolle")


@dataclass(frozen=True)
class GraphRule:
    """One online rule: ``jacobian`` (``"full"`` or ``"leak"``), ``detach_reset``,
    ``surrogate`` (``"bellec"``: ``gamma * max(0, 1 - |g| / v_th)``, from the threshold
    ``v > v_th``; None: the trainer's), ``signal`` (``"readout"``, ``"instant"`` or
    ``"filters"``), the fixed ``filters`` (decays per step), ``params`` (neuron parameters of
    hidden populations get eligibility vectors) and ``symmetric_only``."""

    name: str
    jacobian: str
    detach_reset: bool
    surrogate: str | None
    signal: str
    filters: tuple = ()
    params: bool = True
    symmetric_only: bool = False
    gamma: float = 0.3
    factorised: bool = False   # es_d_rtrl: eligibility as a post x pre product
    decay: float = 0.98        # es_d_rtrl: the traces' exponential smoothing

    def __str__(self) -> str:
        parts = [f"{self.jacobian} local Jacobian"]
        if self.jacobian == "full":
            parts.append("reset detached" if self.detach_reset else "reset differentiated")
        if self.surrogate == "bellec":
            parts.append(f"surrogate Bellec (gamma {self.gamma:g})")
        signal = {"readout": "through the readout", "instant": "this step's only",
                  "local": "from a fixed random readout per population",
                  "filters": "through the filters ["
                  + ", ".join(f"{d:.4g}" for d in self.filters) + "]"}[self.signal]
        if self.factorised:
            parts.append(f"eligibility post x pre, smoothed by {self.decay:g}")
        parts += [f"signal {signal}", f"parameter eligibility {'yes' if self.params else 'no'}"]
        if self.symmetric_only:
            parts.append("symmetric feedback only")
        return f"{self.name}: " + ", ".join(parts)


def graph_rule(rule, dt: float = 1e-3, tau_rise: float = 5e-3, tau_decay: float = 10e-3,
               where: str = "Online") -> GraphRule:
    """The :class:`GraphRule` called ``rule`` (one of :data:`GRAPH_RULES`); a ``GraphRule`` is
    returned as it is. SuperSpike's van Rossum kernel has time constants ``tau_rise`` and
    ``tau_decay`` (seconds) at step ``dt``."""
    if isinstance(rule, GraphRule):
        return rule
    if not isinstance(rule, str) or rule not in GRAPH_RULES:
        raise InvalidValueError(f"{where}: unknown online rule {shown(rule)}; choose one of "
                                f"{', '.join(GRAPH_RULES)}")
    van_rossum = (float(np.exp(-dt / tau_rise)), float(np.exp(-dt / tau_decay)))
    return {
        # Bellec et al. 2020: reset not differentiated, the pseudo-derivative gamma = 0.3
        "eprop": GraphRule("eprop", "full", True, "bellec", "readout"),
        # Bohnstingl et al. 2022: the whole local Jacobian, symmetric feedback
        "ostl": GraphRule("ostl", "full", False, None, "readout", symmetric_only=True),
        "rflo": GraphRule("rflo", "leak", True, None, "readout", params=False),  # Murray 2019
        "superspike": GraphRule("superspike", "leak", True, None, "filters", van_rossum,
                                params=False),
        "d_rtrl": GraphRule("d_rtrl", "full", False, None, "instant"),  # Wang et al. 2025
        "es_d_rtrl": GraphRule("es_d_rtrl", "full", False, None, "instant", factorised=True),
        "ottt": GraphRule("ottt", "leak", True, None, "instant", params=False),  # Xiao 2022
        "decolle": GraphRule("decolle", "leak", True, None, "local", params=False),
    }[rule]


def threshold_value(discrete, params: dict, where: str) -> float:
    """``v_th`` of a threshold ``v > v_th`` (``g = v - v_th``): ``-g`` with every state at
    zero, from the population's parameter values (one number for the population)."""
    from ..parse import symbol
    g = discrete.g.xreplace({symbol(s): 0 for s in discrete.model.state_names})
    name = discrete.model.name
    env = {}
    for s in g.free_symbols:
        if s.name not in params:
            raise SnngenError(f"{where}: the threshold of '{name}' reads '{s.name}' beside "
                              "the states; give the surrogate explicitly (surrogate="
                              "sg.surrogate('triangle', gamma=0.3, width=...))")
        values = np.unique(np.asarray(params[s.name], float))
        if values.size != 1:
            raise SnngenError(f"{where}: the threshold parameter '{s.name}' of '{name}' "
                              "differs between neurons; give the surrogate explicitly "
                              "(surrogate=sg.surrogate('triangle', gamma=0.3, width=...))")
        env[s] = float(values[0])
    value = float(-g.xreplace(env))
    if not value > 0:
        raise SnngenError(f"{where}: Bellec's pseudo-derivative scales by the threshold v_th "
                          f"of '{name}', which is {value:g}; give the surrogate explicitly")
    return value


@dataclass(frozen=True)
class Hidden:
    """A spiking population's place in the plan: ``slot`` (the readout's input its spikes
    arrive at), ``projections`` (its projections into the readout: the symmetric feedback)
    and ``delay`` (their delay in steps: a spike reaches the readout that much later, so
    its trace meets the learning signal that much later)."""

    name: str
    slot: int
    projections: tuple[str, ...]
    delay: int = 0


@dataclass(frozen=True)
class OnlinePlan:
    """Where a rule applies in a network: the ``readout`` population the loss reads (with its
    state index ``state``) and every ``hidden`` population."""

    rule: GraphRule
    readout: str
    state: int
    hidden: tuple[Hidden, ...]
    feedback: str

    def __str__(self) -> str:
        lines = [str(self.rule), f"  readout {self.readout} (the loss reads state "
                 f"{self.state}); feedback {self.feedback}"]
        for h in self.hidden:
            if self.rule.signal == "local":
                lines.append(f"  hidden {h.name}: signal from its own fixed random readout")
                continue
            via = ", ".join(h.projections) or "random feedback"
            lines.append(f"  hidden {h.name}: signal into readout input {h.slot} ({via})"
                         + (f", {h.delay} step(s) later" if h.delay else ""))
        return "\n".join(lines)


def plan(net, nlm, loss, rule: GraphRule, feedback: str, max_delay: dict,
         one_delay: dict) -> OnlinePlan:
    """Check that ``rule`` applies to ``net`` trained on ``loss`` (``max_delay``: the longest
    delay of each projection, in steps; ``one_delay``: whether all its synapses share it) and
    say how: every refusal names what does not fit and what would."""
    where = f"Online ({rule.name})"
    if len(loss.reads) != 1 or loss.reads[0].name == "spikes":
        raise SnngenError(f"{where}: the loss must read a state of one readout population "
                          "(e.g. o.v), not spikes")
    ref = loss.reads[0]
    o = ref.population.name
    lo = nlm.populations[o]
    if lo.g is not None:
        raise SnngenError(f"{where}: the loss reads '{o}', which spikes; online rules need a "
                          "readout population without threshold")
    if rule.signal == "local" and feedback != "symmetric":
        raise SnngenError(f"{where}: DECOLLE's signal comes from each population's own fixed "
                          "random readout (fit.feedback); leave feedback='symmetric'")
    if rule.factorised:
        for d in nlm.deliveries:
            if d.post != o and d.grads and not one_delay[d.projection]:
                raise SnngenError(f"{where}: projection '{d.projection}' has different "
                                  "delays per synapse; the factorised eligibility keeps one "
                                  "presynaptic trace per projection: give it one delay")
    if rule.symmetric_only and feedback != "symmetric":
        raise SnngenError(f"{where}: {rule.name} is defined with symmetric feedback; leave "
                          "feedback='symmetric'")
    for d in nlm.deliveries:
        if d.pre == o:
            raise SnngenError(f"{where}: the readout '{o}' projects onward ('{d.projection}'); "
                              "online rules need the readout to be a leaf of the graph")
    for name, pop in net.populations.items():
        if getattr(pop, "trainable_init", None):
            raise SnngenError(f"{where}: initial states of '{name}' are marked trainable; "
                              "online rules do not train initial states (use sg.BPTT)")
        if name != o and name in nlm.populations and getattr(pop, "trainable", None) \
                and not rule.params:
            raise SnngenError(f"{where}: {rule.name} has no parameter eligibility, but "
                              f"parameters of '{name}' are trainable "
                              f"({', '.join(pop.trainable)}); train them with eprop, ostl "
                              "or d_rtrl")
    if rule.signal in ("readout", "filters", "instant"):
        _check_linear_readout(lo, o, where)
        each = {k for k, per in getattr(net.populations[o], "trainable", {}).items() if per}
        moving = sorted(each & readout_parameters(lo)) if len(nlm.populations) > 1 else []
        if moving:  # one step of training would give each readout neuron its own filter
            raise SnngenError(f"{where}: the readout's {', '.join(moving)} trains per neuron, "
                              "but the rule filters hidden traces with one readout decay "
                              "shared by its neurons: train it shared "
                              "(sg.Trainable(..., per_neuron=False)), or use rule='decolle'")
    hidden = []
    for name, lm in nlm.populations.items():
        if name == o:
            continue
        if lm.g is None:
            raise SnngenError(f"{where}: '{name}' has no threshold and is not what the loss "
                              "reads; online rules support one readout")
        if rule.signal == "local":  # DECOLLE: a local readout, no path into the global one
            hidden.append(Hidden(name, -1, ()))
            continue
        into = [d for d in nlm.deliveries if d.pre == name and d.post == o]
        delays = {max_delay[d.projection] for d in into}
        for d in into:
            if not one_delay[d.projection] or len(delays) > 1:
                raise SnngenError(f"{where}: the projections of '{name}' into the readout "
                                  f"have different delays ('{d.projection}'); the learning "
                                  "signal meets each hidden trace one delay later: give them "
                                  "one delay")
        slots = sorted({d.slot for d in into})
        if len(slots) > 1:
            raise SnngenError(f"{where}: '{name}' projects into several inputs of the readout "
                              f"({', '.join(lo.input_states[s] for s in slots)}); the learning "
                              "signal needs one")
        if feedback == "symmetric":
            if not into:
                raise SnngenError(f"{where}: '{name}' has no projection into the readout "
                                  f"'{o}': symmetric feedback has no signal for it; use "
                                  "feedback='random' or connect it to the readout")
            slot = slots[0]
        elif slots:
            slot = slots[0]
        elif len(lo.inputs) == 1:
            slot = 0
        else:
            raise SnngenError(f"{where}: '{name}' has no projection into the readout and the "
                              "readout has several inputs; connect it to the readout")
        hidden.append(Hidden(name, slot, tuple(dict.fromkeys(d.projection for d in into)),
                             delays.pop() if delays else 0))
    state = [s.name for s in lo.states].index(ref.name)
    return OnlinePlan(rule, o, state, tuple(hidden), feedback)


def _check_linear_readout(lo, name: str, where: str) -> None:
    """The readout's step must be linear with constant coefficients (its Jacobians must not
    read states or inputs): the filter that carries hidden traces to it is then the same at
    every step."""
    for wrt in ("states", "inputs"):
        jac = lo.jacobian("next", wrt)
        moving = {s.name for s in jac.free_symbols} & {
            s.name for s in (*lo.states, *lo.inputs, *lo.noise, *lo.timed)}
        if moving:
            raise SnngenError(f"{where}: the readout '{name}' is not linear (its step's "
                              f"derivative reads {', '.join(sorted(moving))}); the rule "
                              "carries hidden traces through the readout's own Jacobians: "
                              "use a linear readout (e.g. 'dv/dt = -v / tau'), or "
                              "rule='decolle', whose signals come from local readouts")


def readout_parameters(lo) -> set[str]:
    """Names of the readout's parameters that its Jacobians (states, inputs) depend on,
    directly or through the exact integrator's propagators."""
    used = set()
    for wrt in ("states", "inputs"):
        used |= lo.jacobian("next", wrt).free_symbols
    names = {s.name for s in used & set(lo.params)}
    for prop in lo.discrete.propagators:
        if any(s in used for _, s in (*prop.phi, *prop.psi)):
            names |= {s.name for s in sp.Matrix(prop.a).free_symbols}
    return names


@functools.lru_cache(maxsize=64)
def _readout_functions(lo) -> tuple:
    """NumPy functions of the readout's Jacobians (states, inputs), made once per model."""
    from ..integrate import DT, REFRACTORY
    from .reference import _modules
    args = list(lo.states + lo.inputs + lo.params + lo.propagators) + [REFRACTORY, DT]
    return tuple(sp.lambdify(args, lo.jacobian("next", wrt).tolist(), modules=_modules(lo))
                 for wrt in ("states", "inputs"))


def readout_filter(lo, pvals: list, dt: float, n: int, slot: int, where: str,
                   need_decay: bool = True):
    """(A, b): the readout's Jacobians d s(t+1)/d s(t) and d s(t+1)/d x_slot(t), which must be
    the same for every readout neuron (A only when ``need_decay``)."""
    zeros = [np.zeros(n)] * (len(lo.states) + len(lo.inputs))
    out = []
    for fn in _readout_functions(lo):
        rows = fn(*zeros, *pvals, np.zeros(n, bool), dt)
        out.append(np.stack([np.stack([np.broadcast_to(np.asarray(e, float), (n,))
                                       for e in row], axis=-1) for row in rows], axis=1))
    a, bx = out[0], out[1][:, :, slot]
    if not ((np.allclose(a, a[:1], rtol=1e-12, atol=0) or not need_decay)
            and np.allclose(bx, bx[:1], rtol=1e-12, atol=0)):
        raise SnngenError(f"{where}: the readout's decay differs between its neurons; the "
                          "rule filters hidden traces with one decay: give the readout's "
                          "parameters one value (or train them shared), or use "
                          "rule='decolle'")
    return a[0], bx[0]
