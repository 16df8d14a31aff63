"""Network -> NetworkLearningModel: the differentiable step of a whole :class:`~snngen.Network`.

A network's step (LEARNING.md section 1, in Brian2's order) is the step of every population,
coupled through its projections: every population updates its states and tests its threshold;
then every projection delivers the spikes that are due (those emitted ``d`` steps ago for a
synapse of delay ``d``): each ``on_pre`` statement ``target += f`` adds ``f`` to the synaptic
input ``x_target`` of its postsynaptic neuron; then every population adds its input and
resets (:func:`snngen.derive.step.derive`). So the network's derivatives are those of each
population's step with respect to its states, inputs and parameters, and those of each
delivered value ``f`` with respect to the synaptic variables it reads:

    dL/dz_pre[t]  += sum over synapses s of pre, due at t + d_s:  a_x[t + d_s, post_s] * f_s
    dL/dtheta_s   += sum over the spikes of pre_s:  a_x[t + d_s, post_s] * df/dtheta (s)

where ``a_x`` is the adjoint of the postsynaptic input. A delivered value that depends only on
synaptic variables and the projection's parameters (``I += w``, ``ge += w`` into a conductance
that the neuron multiplies by ``(E - v)``, ``I += g_max * w**2``) is differentiated here; the
backends accumulate ``sum a_x`` per synapse and the chain through ``df/dtheta`` is applied per
synapse afterwards. A statement that also reads postsynaptic states is split into terms
``f(synapse) * h(states)``: each factor ``h`` is an input of its own, multiplied by ``h`` of
the states after the update where it arrives (``I += w * (E - v_post)``: the inputs ``w E``
with factor 1 and ``-w`` with factor ``v``), so its derivatives with respect to the states
are the population's. The states it reads must not be written by synaptic statements (then
the order of delivery would matter, and the inputs would not add up).

>>> import snngen as sg
>>> net = sg.Network(dt=1e-3)
>>> x = net.input("x", 3)
>>> lif = sg.NeuronModel("dv/dt = (I - v) / tau : 1\\ndI/dt = -I / taus : 1",
...                      threshold="v > 1", reset="v = 0", name="lif")
>>> h = net.population("h", lif, 4, params={"tau": 0.02, "taus": 0.005})
>>> p = net.connect(x, h, "I += g * w**2", params={"g": 2.0}, w=sg.Trainable(0.5))
>>> nlm = derive_network(net)
>>> print(nlm.deliveries[0])
x_to_h_0: x -> h.I += g*w**2  (d/dw: 2*g*w)
>>> net2 = sg.Network(dt=1e-3)
>>> x2 = net2.input("x", 3)
>>> h2 = net2.population("h", lif, 4, params={"tau": 0.02, "taus": 0.005})
>>> p2 = net2.connect(x2, h2, "I += w * (2 - v_post)", w=sg.Trainable(0.5))
>>> for d in derive_network(net2).deliveries:
...     print(d)
x_to_h_0: x -> h.I += 2*w  (d/dw: 2)
x_to_h_0: x -> h.I += (-w) * (v)  (d/dw: -1)
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..errors import SnngenError
from ..integrate import discretise
from ..model import strip_units
from ..parse import symbol
from ..symbolic import draws
from .bodies import adjoint_step, cse_lines, kernel_renaming
from .step import LearningModel, derive

ZS = sp.Symbol("_zs", real=True)  # the step's spike, read from the tape


@dataclass(frozen=True)
class Delivery:
    """One ``on_pre`` statement ``target += expr`` of a projection: ``expr`` is added to the
    synaptic input ``x_target`` (index ``slot`` of the post population's LearningModel
    inputs) of the postsynaptic neuron when a presynaptic spike is due."""

    projection: str
    pre: str
    post: str
    target: str
    slot: int
    expr: sp.Expr                    # of per-synapse variables and projection parameters
    variables: tuple[str, ...]       # per-synapse variables it reads
    grads: tuple[tuple[str, sp.Expr], ...]  # d expr / d (each trained variable)
    statement: str
    factor: sp.Expr = sp.Integer(1)  # of postsynaptic states: multiplies the input on arrival

    def __str__(self) -> str:
        ds = ", ".join(f"d/d{k}: {e}" for k, e in self.grads)
        value = str(self.expr) if self.factor == 1 else f"({self.expr}) * ({self.factor})"
        return f"{self.projection}: {self.pre} -> {self.post}.{self.target} += {value}" \
            + (f"  ({ds})" if ds else "")


@dataclass(frozen=True)
class NetworkLearningModel:
    """Every population's :class:`LearningModel` (neuron populations, by name), the sources
    whose spikes are given (inputs and spike sources), and the deliveries of the
    projections, in the network's order."""

    populations: dict
    sources: tuple[str, ...]
    deliveries: tuple[Delivery, ...]

    def learning_model(self, name: str) -> LearningModel:
        return self.populations[name]

    def __str__(self) -> str:
        lines = ["NetworkLearningModel"]
        lines += [f"  source {s}" for s in self.sources]
        for name, lm in self.populations.items():
            kind = "silent (no threshold)" if lm.g is None else f"spikes: z = {lm.spike}"
            if lm.noise:  # white noise: fixed inputs, drawn in the forward pass
                kind += f"; noise inputs: {', '.join(map(str, lm.noise))} ~ N(0, 1)"
            if lm.timed:  # TimedArray values: fixed inputs of each step
                kind += f"; time-varying inputs: {', '.join(map(str, lm.timed))}"
            inputs = ", ".join(lm.input_states) or "none"
            lines.append(f"  population {name} ('{lm.discrete.model.name}'): {kind}; "
                         f"inputs: {inputs}")
            lines += [f"    {s}_next = {e}" for s, e in zip(lm.states, lm.next)]
        lines += [f"  delivery {d}" for d in self.deliveries]
        return "\n".join(lines)


def _where(proj) -> str:
    return f"projection '{proj.name}' ({proj.pre.population.name} -> " \
           f"{proj.post.population.name})"


def _check_projection(proj) -> None:
    model, where = proj.model, _where(proj)
    if model.on_post:
        raise SnngenError(f"{where}: on_post statements ({model.on_post_text!r}) are "
                          "plasticity, not trained by gradients: train with a synapse model "
                          "that has on_pre statements only (e.g. 'I += w')")
    if model.clock_driven or model.summed or model.traces:
        what = "clock-driven ODEs" if model.clock_driven else \
            "(summed) variables" if model.summed else "event-driven traces"
        raise SnngenError(f"{where}: training through synapses with {what} is not built yet; "
                          "train a synapse model whose on_pre statements add to a "
                          "postsynaptic state (e.g. 'ge += w', with the dynamics in the "
                          "neuron model)")


def _delivery(proj, stmt, post_lm_targets: list) -> list[tuple]:
    """[(slot key, value added per event)] of one on_pre statement, checked. The value is
    split into terms ``g(synapse) * h(postsynaptic states)``; each distinct factor ``h``
    is an input slot of its own, keyed ``(target, h)`` with ``h`` over the postsynaptic
    model's state symbols (``v_post`` -> ``v``), ``1`` for a value of synaptic variables and
    parameters only."""
    where = f"{_where(proj)}, on_pre statement {stmt.line.strip()!r}"
    post_model = proj.post.population.model
    syn_vars = set(proj.model.variables)
    target = stmt.target
    if target in syn_vars:
        raise SnngenError(f"{where}: it writes the synaptic variable '{target}'; training "
                          "through statements that change synapses is not built yet")
    if target.endswith("_pre"):
        raise SnngenError(f"{where}: it writes the presynaptic '{target}'; only "
                          "postsynaptic states receive input in a trained network")
    name = target[:-5] if target.endswith("_post") else target
    if name not in post_model.state_names:
        raise SnngenError(f"{where}: '{name}' is not a state variable of the postsynaptic "
                          f"model '{post_model.name}' ({', '.join(post_model.state_names)}); "
                          "a trained statement adds to a state, e.g. 'I += w'")
    if stmt.op not in ("+=", "-="):
        raise SnngenError(f"{where}: '{stmt.op}' is not differentiated yet; trained statements "
                          f"add to a state ('{name} += ...' or '{name} -= ...')")
    expr = proj.model.eqs.resolve(stmt.expr)
    if draws(expr):
        raise SnngenError(f"{where}: training through rand()/randn() in synaptic statements is "
                          "not built yet")
    expr = strip_units(expr)
    if stmt.op == "-=":
        expr = -expr
    declared = proj.model.eqs.declared
    allowed = {symbol(v) for v in syn_vars} | {symbol(p) for p in proj.params} | \
        {symbol(n) for n, e in declared.items() if "shared" in e.flags}
    post = {symbol(f"{n}_post"): symbol(n) for n in post_model.state_names}
    for s in sorted(expr.free_symbols, key=lambda x: x.name):
        if s not in allowed and s not in post:
            raise SnngenError(f"{where}: it reads '{s.name}', not a synaptic variable, a "
                              "parameter of the projection or a postsynaptic state "
                              "(<name>_post); training through statements that read "
                              "presynaptic state or time is not built yet (put that "
                              "dependence into the neuron model)")
    terms: dict = {}
    read = set(post) & expr.free_symbols
    for term in (sp.Add.make_args(sp.expand(expr)) if read else (expr,)):
        g, h = term.as_independent(*read, as_Add=False)
        if h.free_symbols - read:
            raise SnngenError(f"{where}: its term {term} is not a product of a value of the "
                              "synapse and a function of postsynaptic states; trained "
                              "statements add such products (e.g. 'I += w * (E - v_post)')")
        h = h.xreplace(post)
        terms[h] = terms.get(h, 0) + g
    out = []
    for h, g in terms.items():
        key = (name, h)
        if key not in post_lm_targets:
            post_lm_targets.append(key)
        out.append((key, g))
    return out


def _check_order_free(targets: dict, raw: list) -> None:
    """A statement that reads a postsynaptic state must not read one that a statement
    writes (its own target included): the states it reads are then those after the update
    whatever order the synapses are delivered in, as the simulation's (Brian2's) sequential
    delivery has them, and the inputs of one step add up."""
    for post, keys in targets.items():
        written = {symbol(name) for name, _ in keys}
        for proj, stmt, (_, h), _ in raw:
            if proj.post.population.name != post:
                continue
            clash = h.free_symbols & written
            if clash:
                raise SnngenError(
                    f"{_where(proj)}, on_pre statement {stmt.line.strip()!r}: it reads "
                    f"{', '.join(sorted(f'{s.name}_post' for s in clash))}, which synaptic "
                    f"statements into '{post}' also change; then the order in which synapses "
                    "deliver changes the result and the step is not a sum of inputs: read "
                    "only postsynaptic states that no statement writes (e.g. 'I += w * (E - "
                    "v_post)' with no statement into v)")


def derive_network(net, surrogate="fast_sigmoid", detach_reset: bool = False,
                   soft_beta: float | None = None) -> NetworkLearningModel:
    """Derive the differentiable step of every population of ``net`` and the deliveries of
    its projections (see the module doc); every part that cannot be differentiated gets an
    error naming it."""
    if net.operations:
        raise SnngenError("training a network with run_regularly operations is not built yet")
    sources, targets, raw = [], {}, []
    for pop in net.populations.values():
        if pop.kind in ("input", "array", "poisson"):  # spikes given: fed, replayed, drawn
            sources.append(pop.name)
        elif pop.kind == "neuron":
            targets[pop.name] = []
        else:
            raise SnngenError(f"population '{pop.name}' ({pop.kind}) cannot be trained yet")
    for proj in net.projections.values():
        _check_projection(proj)
        post = proj.post.population.name
        for stmt in proj.model.on_pre:
            raw += [(proj, stmt, key, expr)
                    for key, expr in _delivery(proj, stmt, targets[post])]
    _check_order_free(targets, raw)
    pops = {}
    for pop in net.populations.values():
        if pop.kind == "neuron":
            keys = targets[pop.name]
            pops[pop.name] = derive(discretise(pop.model, pop.method, frozenset(pop.inputs)),
                                    [k for k, _ in keys], surrogate=surrogate,
                                    soft_beta=soft_beta, detach_reset=detach_reset,
                                    noise_as_input=True, input_factors=[h for _, h in keys],
                                    timed=tuple(sorted(pop.inputs)))
    deliveries = []
    for proj, stmt, key, expr in raw:
        post = proj.post.population.name
        variables = tuple(v for v in proj.model.variables if expr.has(symbol(v)))
        trained = [v for v in proj.trainable]
        grads = tuple((v, sp.diff(expr, symbol(v))) for v in trained)
        deliveries.append(Delivery(proj.name, proj.pre.population.name, post, key[0],
                                   targets[post].index(key), expr, variables, grads,
                                   stmt.line.strip(), key[1]))
    return NetworkLearningModel(pops, tuple(sources), tuple(deliveries))


def _spike_atoms(expr) -> dict:
    """The spike steps H(g) in ``expr`` -> the tape's spike (the forward pass decided it)."""
    return {f: ZS for f in sp.sympify(expr).atoms(sp.Function)
            if getattr(type(f), "surrogate", None)}


def _with_tape_spike(exprs) -> list:
    return [sp.sympify(e).xreplace(_spike_atoms(e)) for e in exprs]


def population_bodies(lm: LearningModel, printer) -> dict:
    """The four derived bodies of one population's network kernels, printed by ``printer``
    (every backend's template declares and stores them): the spike ``_z`` (from the state
    before the step), the next state ``_next<j>`` (from state, input and the tape's spike
    ``_zs``), the input adjoints ``_ax<m>`` and the adjoint step ``_as<j>``, ``_gp<j>``,
    ``_gq<j>``; with the kernel names of states, parameters, propagators, inputs, noise."""
    ren = kernel_renaming(lm)
    k = len(lm.states)
    a = [sp.Symbol(f"_a{j}", real=True) for j in range(k)]
    jx = lm.jacobian("next", "inputs")
    ax = [sum((a[r] * jx[r, c] for r in range(k)), sp.Integer(0)) for c in range(jx.cols)]
    adj = adjoint_step(lm, ("states", "params", "propagators"))
    names = [f"_as{j}" for j in range(k)] + [f"_gp{j}" for j in range(len(lm.params))] \
        + [f"_gq{j}" for j in range(len(lm.propagators))]
    return {
        "spike_body": cse_lines(ren, [lm.spike], ["_z"], printer, "_f"),
        "next_body": cse_lines(ren, _with_tape_spike(lm.next),
                               [f"_next{j}" for j in range(k)], printer, "_n"),
        "adjx_body": cse_lines(ren, _with_tape_spike(ax), [f"_ax{c}" for c in range(len(ax))],
                               printer, "_x"),
        "adj_body": cse_lines(ren, _with_tape_spike(adj), names, printer, "_b"),
        "states": [ren[s].name for s in lm.states],
        "params": [ren[p].name for p in lm.params],
        "props": [ren[q].name for q in lm.propagators],
        "inputs": [x.name for x in lm.inputs],
        "noise": [w.name for w in (*lm.noise, *lm.timed)],  # the N rows: draws, then timed
    }


def jacobian_bodies(lm: LearningModel, printer, flat: bool = False) -> list:
    """The Jacobians of one population's step as (target, code) lines, printed by ``printer``
    (what online learning reads at every step), the trial ``b`` last (the eligibility
    kernels run over trials in their innermost loop): ``J[i, a, c, b] = d s_a(t+1) /
    d s_c(t)``, ``JX[i, a, m, b] = d s_a(t+1) / d x_m(t)``, ``JZ[i, c, b] = d z(t) / d s_c(t)``
    and, over the parameters then the propagators r, ``JP[i, a, r, b]`` and ``JZP[i, r, b]``;
    the reset's spike is the tape's (``_zs``). ``flat``: C's flat indexing of the same
    C-ordered arrays, with the trials' count ``batch``."""
    ren = kernel_renaming(lm)
    k = len(lm.states)
    jn, jx = lm.jacobian("next", "states"), lm.jacobian("next", "inputs")
    jz = lm.jacobian("spike", "states")
    jp = lm.jacobian("next", "params").row_join(lm.jacobian("next", "propagators"))
    jzp = lm.jacobian("spike", "params").row_join(lm.jacobian("spike", "propagators"))

    def at(array: str, idx: tuple, dims: tuple) -> str:
        """``array[i, *idx, b]`` of an array (neurons, *dims, trials)."""
        if not flat:
            return f"{array}[i, {', '.join(map(str, idx))}, b]"
        size, offset = 1, 0
        for j, d in zip(idx, dims):
            size, offset = size * d, offset * d + j
        return f"{array}[(i * {size} + {offset}) * batch + b]"

    m, r = jx.cols, jp.cols
    exprs, names = [], []
    for a in range(k):
        exprs += [jn[a, c] for c in range(k)] + [jx[a, q] for q in range(m)] \
            + [jp[a, q] for q in range(r)]
        names += [at("J", (a, c), (k, k)) for c in range(k)] \
            + [at("JX", (a, q), (k, m)) for q in range(m)] \
            + [at("JP", (a, q), (k, r)) for q in range(r)]
    exprs += [jz[0, c] for c in range(k)] + [jzp[0, q] for q in range(r)]
    names += [at("JZ", (c,), (k,)) for c in range(k)] + [at("JZP", (q,), (r,)) for q in range(r)]
    return cse_lines(ren, _with_tape_spike(exprs), names, printer, "_j")
