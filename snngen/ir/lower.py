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
from ..errors import (
    BackendUnsupported,
    ConnectivityError,
    IntegrationError,
    UnknownNameError,
    did_you_mean,
)
from ..integrate import DT, DiscreteModel, _exact_event, _step, discretise
from ..parse import symbol
from ..symbolic import draws, randn, substitute
from .nodes import (
    Accumulate,
    Arg,
    ArrayStep,
    Assign,
    Deliver,
    NeuronStep,
    PoissonStep,
    Program,
    RateRecord,
    Reset,
    SpikeRecord,
    StateRecord,
    StateVar,
    Summed,
    SynapseUpdate,
    Trace,
)

ELAPSED = sp.Symbol("_elapsed", real=True)
#: The counter's last word of rand() in statements and thresholds: this tag, the site (a
#: population's threshold or reset, a projection's on_pre or on_post) shifted by 10 bits, and
#: the call site; randn() uses normal2 stream RANDN_BASE | site << 10 | call site
STATEMENT_TAG = 0x40000000
RANDN_BASE = 1 << 24
_SITES, _CALLS = 1 << 14, 1 << 10
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
    d: DiscreteModel = discretise(model, pop.method, frozenset(pop.inputs) | summed_targets)
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
              d.refractory if condition_refractory else None]:
        if e is not None:
            used |= {s.name for s in e.free_symbols}
    params, inputs, summed = [], [], []
    for p in model.parameter_names:
        if p not in used:
            continue
        if p in summed_targets:  # set every step by a synapse's (summed) variable
            summed.append((f"{P}_{p}", f"{P}__{p}"))
            _add(args, Arg(f"{P}__{p}", "float", 2, "summed"))
        elif p in pop.inputs:
            inputs.append((f"{P}_{p}", f"{P}__{p}", pop.inputs[p].values.ndim == 2))
            args.append(Arg(f"{P}__{p}", "float64", 2, "input"))
            args.append(Arg(f"{P}__{p}__ratio", "float64", 0, "input_ratio"))
        else:
            pn = p in per_neuron
            params.append((f"{P}_{p}", f"{P}__{p}", pn))
            args.append(Arg(f"{P}__{p}", "float", 1 if pn else 0,
                            "param_array" if pn else "param"))
    rename = {s: f"{P}_{s}" for s in list(model.state_names) + list(model.parameter_names)}
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
    site = 2 * list(net.populations).index(name)
    sub_t, draws_t = _draw_locals([d.condition], P, site, f"threshold of '{name}'")
    sub_r, draws_r = _draw_locals([e for _, e in d.reset], f"{P}_reset", site + 1,
                                  f"reset of '{name}'")
    cond = loc(d.condition).xreplace(sub_t) if d.condition is not None else None
    temps, reduced = sp.cse(new_exprs, symbols=sp.numbered_symbols(f"{P}_tmp", real=True))
    body = tuple(Assign(s.name, e) for s, e in temps)
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
                      draws=draws_t, reset_draws=draws_r, summed=tuple(summed),
                      refractory_condition=refractory_condition)


def _draw_locals(exprs, prefix: str, site: int, where: str):
    """(substitution, draws): a local for every rand()/randn() call site in ``exprs``."""
    sub, out = {}, []
    for d in sorted({d for e in exprs for d in draws(e)}, key=lambda d: int(d.args[0])):
        j = int(d.args[0])
        if j >= _CALLS or site >= _SITES:
            raise BackendUnsupported(f"{where}: too many rand()/randn() calls (at most "
                                     f"{_CALLS} in one block) or populations and projections")
        local = f"{prefix}___r{j}"
        sub[d] = sp.Symbol(local, real=True)
        normal = isinstance(d, randn)
        out.append((local, "normal" if normal else "uniform",
                    (RANDN_BASE if normal else STATEMENT_TAG) | site << 10 | j))
    return sub, tuple(out)


#: Brian2's per-neuron refractoriness variables, readable in synaptic statements (with
#: ``_pre``/``_post``; plain names are postsynaptic) of populations with a refractory period
SPIKE_VARIABLES = ("lastspike", "not_refractory")
#: Brian2's ``lastspike`` before a neuron's first spike (seconds)
LASTSPIKE_NEVER = -1e4


def _spike_variable(proj, name: str):
    """(kind, side) if ``name`` is ``lastspike``/``not_refractory`` of a side, else None;
    refused clearly where that side has no refractory period (Brian2 has no such
    variable then)."""
    for kind in SPIKE_VARIABLES:
        for suffix, side in (("_pre", "pre"), ("_post", "post"), ("", "post")):
            if name == kind + suffix:
                pop = getattr(proj, side).population
                if getattr(getattr(pop, "model", None), "refractory", None) is None:
                    raise UnknownNameError(
                        f"projection '{proj.name}': '{name}' needs a refractory period on the "
                        f"{side}synaptic side, and population '{pop.name}' has none (give "
                        "its model refractory=..., e.g. refractory=0)")
                return kind, side
    return None


def _resolve_synaptic(proj, stmts_exprs, spike_vars=None):
    """Classify every name used by a synapse's statements; ``lastspike`` and
    ``not_refractory`` go into ``spike_vars`` (name -> (kind, side)) where given, and are
    refused where not."""
    model, pre, post = proj.model, proj.pre.population, proj.post.population
    syn, pre_v, post_v, params = {}, {}, {}, {}
    pre_states = getattr(getattr(pre, "model", None), "state_names", ())
    post_states = post.model.state_names
    for name in sorted(stmts_exprs):
        if name in model.variables:
            syn[name] = name
        elif (found := _spike_variable(proj, name)) is not None:
            if spike_vars is None:
                raise BackendUnsupported(
                    f"projection '{proj.name}': '{name}' can be read in on_pre and on_post "
                    "with one delay per projection; not yet with per-synapse delays or in "
                    "clock-driven or summed synaptic equations")
            spike_vars[name] = found
        elif name.endswith("_pre") and name[:-4] in pre_states:
            pre_v[name] = name[:-4]
        elif name.endswith("_post") and name[:-5] in post_states:
            post_v[name] = name[:-5]
        elif name in post_states:
            post_v[name] = name
        elif name in proj.params:
            params[name] = name
        elif name in ("t", "dt", ELAPSED.name):
            continue
        else:
            known = list(model.variables) + [s + "_post" for s in post_states] + \
                list(post_states) + [s + "_pre" for s in pre_states] + list(proj.params)
            raise UnknownNameError(
                f"projection '{proj.name}': unknown name '{name}' in its synaptic statements."
                + did_you_mean(name, known) + " Synaptic parameters go in params={...}.")
    return syn, pre_v, post_v, params


def refractory_args(pop) -> tuple[str, str]:
    """(last-spike arg, refractoriness arg) of a population with a refractory period: the
    refractory steps (a duration) or the not-refractory flags (a condition); the renderers
    test either by its role (``_not_refractory``)."""
    flag = "notref" if pop.model.refractory_is_condition else "refsteps"
    return f"{pop.name}___last", f"{pop.name}___{flag}"


def _clamped(pop, state: str) -> tuple[str, str] | None:
    """:func:`refractory_args` if ``state`` of ``pop`` is flagged ``(unless refractory)`` in
    a model with a refractory period, else None."""
    model = getattr(pop, "model", None)
    if model is None or model.refractory is None or state not in model.clamped:
        return None
    return refractory_args(pop)


def _add(args: list[Arg], arg: Arg) -> None:
    if arg not in args:
        args.append(arg)


def _written(proj) -> set[str]:
    """Synaptic variables changed by events: they get one copy per batch entry."""
    stmts = proj.model.on_pre + proj.model.on_post
    return {s.target for s in stmts if s.target in proj.model.variables} | \
        {t.name for t in proj.model.traces} | set(proj.model.clock_driven)


def _synaptic_args(proj, syn, params, args):
    P = proj.name  # noqa: N806
    written = _written(proj)
    for name in syn:
        _add(args, Arg(f"{P}__{name}", "float", 2, "syn_batched" if name in written else "syn"))
    for name in params:
        _add(args, Arg(f"{P}__{name}", "float64", 0, "syn_param"))
    return tuple((f"{P}_{n}", f"{P}__{n}", n in written) for n in syn), \
        tuple((f"{P}_{n}", f"{P}__{n}") for n in params)


def _deliver(net, proj, args, direction) -> list:
    P = proj.name  # noqa: N806
    pre, post = proj.pre.population, proj.post.population
    stmts = proj.model.on_pre if direction == "pre" else proj.model.on_post
    traces = proj.model.traces
    names = set()
    resolve = proj.model.eqs.resolve  # synaptic subexpressions, and units to SI scales
    for s in stmts:
        names |= {x.name for x in resolve(s.expr).free_symbols} | {s.target}
    decays = {}
    if traces:
        rhs = {symbol(tr.name): tr.rhs for tr in traces}
        exact = _exact_event(rhs)
        if exact is None:
            raise BackendUnsupported(f"projection '{proj.name}': event-driven equations must be "
                                     "linear with constant coefficients")
        for tr in traces:
            decays[tr.name] = exact[symbol(tr.name)].xreplace({DT: ELAPSED})
            names |= {x.name for x in decays[tr.name].free_symbols} | {tr.name}
    spike_v: dict = {}
    syn, pre_v, post_v, params = _resolve_synaptic(proj, names, spike_v)
    for s in stmts:
        if s.target in spike_v:
            raise UnknownNameError(f"projection '{proj.name}': '{s.target}' is read-only "
                                   "(set by the neuron's threshold and refractory period)")
    ren = {**{n: f"{P}_{n}" for n in syn}, **{n: f"{P}_{n}" for n in params},
           **{n: f"{P}_{n}" for n in pre_v}, **{n: f"{P}_{n}" for n in post_v},
           **{n: f"{P}_{n}" for n in spike_v}, ELAPSED.name: f"{P}__elapsed"}

    def loc(e):
        e = resolve(e)
        return e.xreplace({x: sp.Symbol(ren.get(x.name, x.name), real=True)
                           for x in e.free_symbols})
    syn_t, par_t = _synaptic_args(proj, syn, params, args)
    site = 2 * (len(net.populations) + list(net.projections).index(proj.name)) \
        + (direction == "post")
    sub, drawn = _draw_locals([s.expr for s in stmts], f"{P}_{direction}", site,
                              f"on_{direction} of projection '{P}'")
    body = []
    for s in stmts:
        body.append(Assign(ren[s.target], loc(s.value(symbol(s.target))).xreplace(sub)))
    tr_nodes = tuple(Trace(ren[n], f"{P}__{n}", loc(decays[n])) for n in decays)
    if tr_nodes:
        _add(args, Arg(f"{P}__lastupdate", "int64", 2, "syn_lastupdate"))
    kinds = [(ren[s.target], "syn" if s.target in syn else "pre" if s.target in pre_v
              else "post") for s in stmts]
    if direction == "pre":
        args.append(Arg(f"{P}__delay", "int64", 0, "delay"))
    written = dict(kinds)
    guards = tuple((ren[n], *g) for side, names, pop in (("pre", pre_v, pre), ("post", post_v,
                                                                                 post))
                   for n, v in names.items() if written.get(ren[n]) == side
                   and (g := _clamped(pop, v)) is not None)
    return [Deliver(P, direction, f"{(pre if direction == 'pre' else post).name}___ring",
                    f"{P}__delay", syn_t,
                    tuple((ren[n], f"{pre.name}__{v}") for n, v in pre_v.items()),
                    tuple((ren[n], f"{post.name}__{v}") for n, v in post_v.items()),
                    par_t, tr_nodes, tuple(body), tuple(written.items()), guards, drawn,
                    tuple((ren[n], kind, *refractory_args(getattr(proj, side).population),
                           "j" if side == "pre" else "post")
                          for n, (kind, side) in sorted(spike_v.items())))]


def _accumulate(proj, args) -> Accumulate:
    P = proj.name  # noqa: N806
    stmts, post = proj.model.on_pre, proj.post.population
    if proj.model.on_post or proj.model.traces or len(stmts) != 1 or stmts[0].op not in ("+=",
                                                                                         "-="):
        raise BackendUnsupported(
            f"projection '{proj.name}': per-synapse delays need on_pre to be a single "
            "'post_var += expr' statement without on_post or event-driven traces "
            "(use one delay per projection for richer synapses)")
    stmt = stmts[0]
    if draws(stmt.expr):
        raise BackendUnsupported(f"projection '{proj.name}': rand()/randn() with per-synapse "
                                 "delays is not built yet (use one delay per projection)")
    expr = proj.model.eqs.resolve(stmt.expr) * (1 if stmt.op == "+=" else -1)
    syn, pre_v, post_v, params = _resolve_synaptic(proj, {x.name for x in expr.free_symbols})
    target = stmt.target[:-5] if stmt.target.endswith("_post") else stmt.target
    if post_v or target not in post.model.state_names:
        raise BackendUnsupported(f"projection '{proj.name}': with per-synapse delays the "
                                 "statement must add to a postsynaptic state variable and may "
                                 "not read postsynaptic variables")
    ren = {n: f"{P}_{n}" for n in list(syn) + list(params) + list(pre_v)}
    syn_t, par_t = _synaptic_args(proj, syn, params, args)
    args += [Arg(f"{P}__delays", "int64", 1, "delays"), Arg(f"{P}__buf", "float", 3, "accum")]
    e = expr.xreplace({x: sp.Symbol(ren[x.name], real=True) for x in expr.free_symbols
                       if x.name in ren})
    pre = proj.pre.population
    return Accumulate(P, f"{pre.name}___ring", f"{post.name}__{target}",
                      f"{P}__buf", syn_t, par_t,
                      tuple((ren[n], f"{pre.name}__{v}") for n, v in pre_v.items()), e,
                      _clamped(post, target))


def _synaptic_locals(proj, exprs, args):
    """Locals of the names in ``exprs`` (per-synapse, pre, post, parameters) and the
    substitution that renames them: (syn, pre, post, params, rename)."""
    P = proj.name  # noqa: N806
    names = {x.name for e in exprs for x in e.free_symbols}
    syn, pre_v, post_v, params = _resolve_synaptic(proj, names)
    pre, post = proj.pre.population, proj.post.population
    ren = {n: sp.Symbol(f"{P}_{n}", real=True) for n in [*syn, *params, *pre_v, *post_v]}
    syn_t, par_t = _synaptic_args(proj, syn, params, args)
    pre_t = tuple((f"{P}_{n}", f"{pre.name}__{v}") for n, v in pre_v.items())
    post_t = tuple((f"{P}_{n}", f"{post.name}__{v}") for n, v in post_v.items())
    return syn_t, pre_t, post_t, par_t, {symbol(n): r for n, r in ren.items()}


def _synapse_update(proj, args) -> SynapseUpdate:
    """One step of the clock-driven ODEs of ``proj`` (no loop-invariant hoisting: values may
    differ per synapse; no ``exact``: its propagators would be per synapse)."""
    model, P = proj.model, proj.name  # noqa: N806
    rhs = {symbol(n): e for n, e in model.rhs.items()}
    states = set(rhs)
    varying = {x for e in rhs.values() for x in e.free_symbols} - states
    if model.method == "exact":
        raise BackendUnsupported(f"projection '{P}': method 'exact' is not available for "
                                 "clock-driven synaptic equations yet; use 'auto' (exponential "
                                 "Euler, exact for a linear decay), 'euler', 'rk2' or 'rk4'")
    order = ("exponential_euler", "euler") if model.method == "auto" else (model.method,)
    for m in order:
        try:
            _, new, _ = _step(rhs, m, varying, f"synapse '{model.name}' of projection '{P}'")
            break
        except IntegrationError:
            if m == order[-1]:
                raise
    exprs = list(new.values())
    syn_t, pre_t, post_t, par_t, ren = _synaptic_locals(proj, exprs + list(rhs), args)
    local = [substitute(e, ren) for e in exprs]
    temps, reduced = sp.cse(local, symbols=sp.numbered_symbols(f"{P}_stmp", real=True))
    body = tuple(Assign(x.name, e) for x, e in temps)
    updates = []
    for x, e in zip(new, reduced):
        body += (Assign(f"{P}_{x.name}_new", e),)
        updates.append((f"{P}_{x.name}", f"{P}_{x.name}_new"))
    return SynapseUpdate(P, syn_t, pre_t, post_t, par_t, body, tuple(updates))


def _summed(proj, args) -> Summed:
    P, post = proj.name, proj.post.population  # noqa: N806
    exprs = [s.expr for s in proj.model.summed]
    syn_t, pre_t, post_t, par_t, ren = _synaptic_locals(proj, exprs, args)
    sums = []
    for s in proj.model.summed:
        _add(args, Arg(f"{post.name}__{s.target}", "float", 2, "summed"))
        sums.append((f"{post.name}__{s.target}", substitute(s.expr, ren)))
    return Summed(P, syn_t, pre_t, post_t, par_t, tuple(sums))


def _summed_targets(net) -> dict[str, set[str]]:
    """Population name -> its parameters set by (summed) variables; a declared parameter
    that has neither a value nor a summed variable is reported here, before any work."""
    targets: dict[str, set[str]] = {}
    for proj in net.projections.values():
        for s in proj.model.summed:
            targets.setdefault(proj.post.population.name, set()).add(s.target)
    for pop in net.populations.values():
        if pop.kind == "neuron" and pop.pending - targets.get(pop.name, set()):
            pop.model.check_parameters(
                {**pop.params, **dict.fromkeys(targets.get(pop.name, ()), 0.0)},
                f"population '{pop.name}'")
    return targets


def _poisson_stream(net, pop) -> int:
    """The Philox stream of a Poisson group: 1 + its position among the network's
    populations and projections, as before the schedule put populations first (its draws,
    and so its spikes for a given seed, do not change)."""
    return 1 + sum(1 for p in net.projections.values() if p.heterogeneous or p.model.on_pre) \
        + sum(1 for p in net.projections.values() if p.model.on_post) \
        + list(net.populations).index(pop.name)


def lower(net) -> Lowered:
    """Lower a :class:`~snngen.runtime.network.Network` to a :class:`Program`."""
    targets = _summed_targets(net)
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
            sums.append(_summed(proj, args))
        if proj.model.clock_driven:
            updates.append(_synapse_update(proj, args))
        if proj.heterogeneous:
            deliveries.append(_accumulate(proj, args))
        elif proj.model.on_pre:
            deliveries += _deliver(net, proj, args, "pre")
        if proj.model.on_post:
            if proj.heterogeneous:
                raise ConnectivityError(f"projection '{P}': on_post needs one delay per "
                                        "projection")
            args += [Arg(f"{P}__tindptr", "int64", 1, "index"),
                     Arg(f"{P}__tsyn", "int64", 1, "index"),
                     Arg(f"{P}__tpre", "int32", 1, "index")]
            post_deliveries += _deliver(net, proj, args, "post")
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
    steps = starts + sums + groups + records + deliveries + post_deliveries + resets
    names = [a.name for a in args]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConnectivityError(f"name clash in generated arguments: {sorted(dup)} (rename "
                                "a population or projection)")
    prog = Program("network", tuple(args), tuple(steps), tuple(rings), net.dtype)
    return Lowered(prog, constants, discrete)


__all__ = ["lower", "Lowered", "ELAPSED"]
