"""Network description + DiscreteModels -> Program (the kernel IR) + constant expressions.

Naming convention of program arguments (the runtime binds arrays by these names):
``<pop>___n`` (three underscores: model names never start with one, so no state, parameter
or constant of a model can take these names), ``<pop>__<state>`` (B, n), ``<pop>__<param>``,
``<pop>__<const>``,
``<pop>___last`` / ``<pop>___refsteps`` (refractoriness), ``<pop>___ring`` / ``<pop>___ringn``
(spike history), ``<proj>__indptr`` ... (connectivity), ``<proj>__<synvar>`` (Bs, S),
``m<k>__...`` (monitors).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import stochastic
from ..errors import BackendUnsupported, ConnectivityError
from ..integrate import DT, DiscreteModel, discretise
from ..parse import symbol
from ..symbolic import substitute
from . import synapses
from .common import ELAPSED, POPULATION_SITES, add_arg, draw_locals
from .nodes import (
    Arg,
    ArrayStep,
    Assign,
    NeuronStep,
    PoissonStep,
    Program,
    RateRecord,
    Regularly,
    Reset,
    SpikeRecord,
    StateRecord,
    StateVar,
)

#: Normal-draw streams per population (two white-noise variables each): population k uses
#: streams k * NOISE_PAIRS ... (snngen.draw keeps streams below 2**25)
NOISE_PAIRS = 64


@dataclass(frozen=True)
class Lowered:
    """A Program plus what the runtime needs to fill its constant arguments."""

    program: Program
    constants: dict   # pop -> {"propagators", "values": [(sym, expr)], "outputs": [(arg, sym, pn)]}
    discrete: dict    # pop -> DiscreteModel


def _neuron_step(net, pop, args: list[Arg], constants: dict, discrete: dict,
                 summed_targets=frozenset()) -> NeuronStep:
    name, model = pop.name, pop.model
    # time tables and summed variables change every step: never hoisted
    const_dt = model.eqs.constant_over_dt  # evaluated before the update, every step
    d: DiscreteModel = discretise(model, pop.method, frozenset(pop.inputs) | summed_targets
                                  | frozenset(const_dt) | frozenset(model.spike_variables))
    discrete[name] = d
    per_neuron = pop.per_neuron()
    P = name  # noqa: N806 - short prefix used in names below
    args.append(Arg(f"{P}___n", "int64", 0, "size"))
    states = tuple(StateVar(f"{P}_{x}", f"{P}__{x}") for x in model.state_names)
    args += [Arg(s.arg, "float", 2, "state") for s in states]
    # constants: per neuron if anything they depend on is
    pn_syms = {symbol(p) for p in per_neuron}
    for prop in d.propagators:
        if prop.a.free_symbols & pn_syms:
            pn_syms |= {s for _, s in prop.phi + prop.psi}
    for sym, expr in d.constants:
        if expr.free_symbols & pn_syms:
            pn_syms.add(sym)
    invariant = {s for s, _ in d.constants} | {s for p in d.propagators for _, s in p.phi + p.psi}
    in_loop = set().union(*(e.free_symbols for _, e in d.updates))
    consts = []
    for sym in sorted(invariant & in_loop, key=lambda x: x.name):
        pn = sym in pn_syms
        consts.append((f"{P}_{sym.name}", f"{P}__{sym.name}", pn))
        args.append(Arg(f"{P}__{sym.name}", "float", 1 if pn else 0,
                        "const_array" if pn else "const"))
    constants[name] = {"propagators": d.propagators, "values": list(d.constants),
                       "outputs": [(arg, sp.Symbol(loc[len(P) + 1:], real=True), pn)
                                   for loc, arg, pn in consts]}
    used = set()
    for _, e in d.updates:
        used |= {s.name for s in e.free_symbols}
    condition_refractory = d.refractory is not None and model.refractory_is_condition
    for e in [d.condition, *[e for _, e in d.reset],
              d.refractory if condition_refractory else None, *const_dt.values()]:
        if e is not None:
            used |= {s.name for s in e.free_symbols}
    params, inputs, summed = [], [], []
    for p in model.parameter_names:
        if p not in used:
            continue
        if p in summed_targets:  # set every step by a synapse's (summed) variable
            summed.append((f"{P}_{p}", f"{P}__{p}"))
            add_arg(args, Arg(f"{P}__{p}", "float", 2, "summed"))
        elif p in pop.inputs:
            inputs.append((f"{P}_{p}", f"{P}__{p}", pop.inputs[p].values.ndim == 2))
            args.append(Arg(f"{P}__{p}", "float64", 2, "input"))
            args.append(Arg(f"{P}__{p}__ratio", "float64", 0, "input_ratio"))
        else:
            pn = p in per_neuron
            params.append((f"{P}_{p}", f"{P}__{p}", pn))
            args.append(Arg(f"{P}__{p}", "float", 1 if pn else 0,
                            "param_array" if pn else "param"))
    rename = {s: f"{P}_{s}" for s in list(model.state_names) + list(model.parameter_names)
              + list(const_dt) + list(model.spike_variables)}
    rename.update({s.name: f"{P}_{s.name}" for s in invariant})
    rename.update({"t": "t", "dt": "dt", "i": "i", "N": f"{P}_N", "_refractory": f"{P}_refr"})
    normals = [stochastic.normal(symbol(n)).name for n in d.noise]
    rename.update({n: f"{P}__{n}" for n in normals})  # {P}___N_xi: no argument has this name
    if len(normals) > 2 * NOISE_PAIRS:
        raise BackendUnsupported(f"population '{name}': {len(normals)} white-noise variables; "
                                 f"at most {2 * NOISE_PAIRS} are supported")
    base = list(net.populations).index(name) * NOISE_PAIRS
    noise = tuple((f"{P}__{normals[k]}", f"{P}__{normals[k + 1]}" if k + 1 < len(normals)
                   else "", base + k // 2) for k in range(0, len(normals), 2))

    def loc(expr):
        return substitute(expr, {s: sp.Symbol(rename.get(s.name, s.name), real=True)
                                 for s in expr.free_symbols})

    new_exprs = [loc(e) for _, e in d.updates]
    site = POPULATION_SITES * list(net.populations).index(name)
    sub_t, draws_t = draw_locals([d.condition], P, site, f"threshold of '{name}'")
    sub_r, draws_r = draw_locals([e for _, e in d.reset], f"{P}_reset", site + 1,
                                  f"reset of '{name}'")
    sub_c, draws_c = draw_locals(list(const_dt.values()), f"{P}_const", site + 2,
                                 f"(constant over dt) subexpressions of '{name}'")
    cond = loc(d.condition).xreplace(sub_t) if d.condition is not None else None
    temps, reduced = sp.cse(new_exprs, symbols=sp.numbered_symbols(f"{P}_tmp", real=True))
    body = tuple(Assign(f"{P}_{n}", loc(e).xreplace(sub_c)) for n, e in const_dt.items())
    body += tuple(Assign(s.name, e) for s, e in temps)
    new_locals = []
    for (x, _), e in zip(d.updates, reduced):
        tgt = f"{P}_{x.name}_new"
        body += (Assign(tgt, e),)
        new_locals.append((f"{P}_{x.name}", tgt))
    reset = tuple(Assign(f"{P}_{x.name}", loc(e).xreplace(sub_r)) for x, e in d.reset)
    refractory = refractory_condition = None
    if condition_refractory:
        # Brian2: not_refractory = not_refractory or not (condition), before each update;
        # cleared by a spike. A flag per neuron; the last spike is kept for lastspike
        refractory = f"{P}___notref"
        refractory_condition = loc(d.refractory)
        args.append(Arg(f"{P}___last", "int32", 2, "last_spike"))
        args.append(Arg(f"{P}___notref", "int32", 2, "not_refractory"))
    elif d.refractory is not None:
        refractory = f"{P}___refsteps"
        # the step of the last spike is read, not written, by the vectorised update
        ref_pn = bool({s.name for s in d.refractory.free_symbols} & per_neuron)
        args.append(Arg(f"{P}___last", "int32", 2, "last_spike"))
        args.append(Arg(f"{P}___refsteps", "int32", int(ref_pn), "refractory_steps"))
        # Brian2: refractory while timestep(t - lastspike) < timestep(refractory), with
        # timestep(x) = int((x + 1e-3 dt) / dt); the kernel tests step - last <= _refsteps
        constants[name]["values"].append((sp.Symbol("_refsteps", real=True),
                                          (d.refractory + DT / 1000) / DT))
        constants[name]["outputs"].append((f"{P}___refsteps", sp.Symbol("_refsteps", real=True),
                                           ref_pn))
    spikes = None
    if model.threshold is not None:
        spikes = f"{P}___ring"
        args += [Arg(f"{P}___ring", "int32", 3, "ring"), Arg(f"{P}___ringn", "int64", 2, "ringn"),
                 Arg(f"{P}__z", "uint8", 1, "scratch")]
    return NeuronStep(name, f"{P}___n", states, tuple(params), tuple(inputs), tuple(consts),
                      body, tuple(new_locals), cond, reset, refractory, spikes, noise=noise,
                      draws=draws_c + draws_t, reset_draws=draws_r, summed=tuple(summed),
                      refractory_condition=refractory_condition,
                      spike_vars=tuple((f"{P}_{n}", n) for n in model.spike_variables))


def _operation(net, k: int, op, args: list[Arg]) -> Regularly:
    """A run_regularly operation (statements on states; parameters read as the neuron step
    reads them; rand()/randn() drawn per neuron with the operation's own draw site)."""
    pop, model, P = op.pop, op.pop.model, op.pop.name  # noqa: N806
    exprs = [model.eqs.resolve(s.expr) for s in op.statements]
    used = {x.name for e in exprs for x in e.free_symbols}
    per_neuron = pop.per_neuron()
    params = []
    for p in model.parameter_names:
        if p in used:
            pn = p in per_neuron
            params.append((f"{P}_{p}", f"{P}__{p}", pn))
            add_arg(args, Arg(f"{P}__{p}", "float", 1 if pn else 0,
                              "param_array" if pn else "param"))
    add_arg(args, Arg(f"{P}___n", "int64", 0, "size"))
    every = f"op{k}___every"
    args.append(Arg(every, "int64", 0, "every"))
    states = tuple(StateVar(f"{P}_{x}", f"{P}__{x}") for x in model.state_names)
    site = POPULATION_SITES * len(net.populations) + 2 * len(net.projections) + k
    sub, drawn = draw_locals([s.expr for s in op.statements], f"{P}_op{k}", site,
                             f"run_regularly '{op.name}'")
    ren = {symbol(n): sp.Symbol(f"{P}_{n}", real=True)
           for n in list(model.state_names) + list(model.parameter_names)}
    ren[symbol("N")] = sp.Symbol(f"{P}_N", real=True)
    body = tuple(Assign(f"{P}_{s.target}",
                        substitute(model.eqs.resolve(s.value(symbol(s.target))), ren)
                        .xreplace(sub)) for s in op.statements)
    written = {s.target for s in op.statements}
    return Regularly(P, op.name, f"{P}___n", every, states, tuple(params), body,
                     tuple((f"{P}_{x}", f"{P}__{x}") for x in model.state_names
                           if x in written), drawn)


def _poisson_stream(net, pop) -> int:
    """The Philox stream of a Poisson group: 1 + its position among the network's
    populations and projections, as before the schedule put populations first (its draws,
    and so its spikes for a given seed, do not change)."""
    return 1 + sum(1 for p in net.projections.values() if p.heterogeneous or p.model.on_pre) \
        + sum(1 for p in net.projections.values() if p.model.on_post) \
        + list(net.populations).index(pop.name)


def lower(net) -> Lowered:
    """Lower a :class:`~snngen.runtime.network.Network` to a :class:`Program`."""
    targets = synapses.summed_targets(net)
    args = [Arg("batch", "int64", 0, "batch"), Arg("dt", "float64", 0, "dt")]
    steps, constants, discrete, rings = [], {}, {}, []
    deliveries, post_deliveries, sums, updates = [], [], [], []
    # Brian2 runs every pre pathway before every post pathway, ties broken by name
    for proj in sorted(net.projections.values(), key=lambda p: p.name):
        P = proj.name  # noqa: N806
        for side, needed in ((proj.pre.population, bool(proj.model.on_pre)),
                             (proj.post.population, bool(proj.model.on_post))):
            if needed and side.kind == "neuron" and side.model.threshold is None:
                raise ConnectivityError(
                    f"projection '{P}': population '{side.name}' has no threshold, so it "
                    "never spikes; give its model a threshold or connect another source")
        args += [Arg(f"{P}__indptr", "int64", 1, "index"), Arg(f"{P}__indices", "int32", 1,
                                                                "index"),
                 Arg(f"{P}__pre_start", "int64", 0, "bound"), Arg(f"{P}__pre_stop", "int64", 0,
                                                                  "bound"),
                 Arg(f"{P}__post_start", "int64", 0, "bound"),
                 Arg(f"{P}__post_stop", "int64", 0, "bound")]
        if proj.model.summed:
            sums.append(synapses.summed(proj, args))
        if proj.model.clock_driven:
            updates.append(synapses.synapse_update(proj, args))
        if proj.heterogeneous and synapses.accumulates(proj):
            deliveries.append(synapses.accumulate(proj, args))
        elif proj.model.on_pre:
            deliveries += synapses.deliver(net, proj, args, "pre")
        if proj.model.on_post:  # the post pathway has no delay (Brian2's default)
            args += [Arg(f"{P}__tindptr", "int64", 1, "index"),
                     Arg(f"{P}__tsyn", "int64", 1, "index"),
                     Arg(f"{P}__tpre", "int32", 1, "index")]
            post_deliveries += synapses.deliver(net, proj, args, "post")
    records, resets = [], []
    for pop in net.populations.values():
        if pop.kind == "neuron":
            node = _neuron_step(net, pop, args, constants, discrete,
                                frozenset(targets.get(pop.name, ())))
        elif pop.kind == "poisson":
            args.append(Arg(f"{pop.name}___n", "int64", 0, "size"))
            per = pop.rates.ndim == 1
            args.append(Arg(f"{pop.name}__rate", "float64", 1 if per else 0,
                            "param_array" if per else "param"))
            node = PoissonStep(pop.name, f"{pop.name}___n", f"{pop.name}__rate", per,
                               _poisson_stream(net, pop), f"{pop.name}___ring")
            args += [Arg(f"{pop.name}___ring", "int32", 3, "ring"),
                     Arg(f"{pop.name}___ringn", "int64", 2, "ringn")]
        else:
            args.append(Arg(f"{pop.name}___n", "int64", 0, "size"))
            args += [Arg(f"{pop.name}__ev_step", "int64", 1, "events"),
                     Arg(f"{pop.name}__ev_idx", "int32", 1, "events"),
                     Arg(f"{pop.name}__cursor", "int64", 1, "cursor"),
                     Arg(f"{pop.name}___ring", "int32", 3, "ring"),
                     Arg(f"{pop.name}___ringn", "int64", 2, "ringn")]
            node = ArrayStep(pop.name, f"{pop.name}___n", f"{pop.name}___ring", pop.name)
        if getattr(node, "spikes", None):
            rings.append((f"{pop.name}___ring", f"{pop.name}___n"))
        steps.append(node)
        if isinstance(node, NeuronStep) and node.spikes and node.reset:
            resets.append(Reset(pop.name, node.spikes))
    starts = []  # state monitors record at the start of the step, as Brian2's do
    for k, mon in enumerate(net.monitors):
        M, pop = f"m{k}", mon.pop  # noqa: N806
        if mon.kind in ("spikes", "rate") and f"{pop.name}___ring" not in dict(rings):
            raise BackendUnsupported(f"population '{pop.name}' has no threshold: no spikes "
                                     "to monitor")
        if mon.kind == "spikes":
            args += [Arg(f"{M}__i", "int32", 1, "monitor"), Arg(f"{M}__step", "int64", 1,
                                                                "monitor"),
                     Arg(f"{M}__b", "int32", 1, "monitor"), Arg(f"{M}__count", "int64", 1,
                                                                "monitor")]
            records.append(SpikeRecord(pop.name, f"{pop.name}___ring", M))
        elif mon.kind == "rate":
            args.append(Arg(f"{M}__counts", "int32", 2, "monitor"))
            records.append(RateRecord(pop.name, f"{pop.name}___ring", M))
        else:
            args += [Arg(f"{M}__data", "float", 4, "monitor"), Arg(f"{M}__idx", "int32", 1,
                                                                   "monitor"),
                     Arg(f"{M}__every", "int64", 0, "monitor"),
                     Arg(f"{M}__count", "int64", 1, "monitor")]
            starts.append(StateRecord(pop.name,
                                      tuple(f"{pop.name}__{v}" for v in mon.variables), M))
    # Brian2's schedule: start (state monitors), groups (state updates), thresholds (and spike
    # monitors), synapses (propagation: pre pathways, then post), resets
    # Brian2's "groups" slot: summed-variable updaters first (order -1), then neuron and
    # synapse state updates (order 0) by name; neuron updates commute with each other
    groups = sorted(steps + updates, key=lambda n: getattr(n, "pop", None) or n.proj)
    # run_regularly operations: Brian2's "start" slot, here before the state monitors
    ops = [_operation(net, k, op, args) for k, op in enumerate(net.operations)]
    steps = ops + starts + sums + groups + records + deliveries + post_deliveries + resets
    names = [a.name for a in args]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConnectivityError(f"name clash in generated arguments: {sorted(dup)} (rename "
                                "a population or projection)")
    prog = Program("network", tuple(args), tuple(steps), tuple(rings), net.dtype)
    return Lowered(prog, constants, discrete)


__all__ = ["lower", "Lowered", "ELAPSED"]
