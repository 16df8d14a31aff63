"""Lowering of projections: synaptic statements (events, with one delay or per-synapse
delays), clock-driven synaptic equations and summed variables; and how synapses read
neurons (pre/post variables, ``lastspike``, ``not_refractory``, refractory guards).

Called by :func:`snngen.ir.lower.lower`, which orders the nodes in Brian2's schedule.
"""

from __future__ import annotations

import sympy as sp

from ..errors import BackendUnsupported, IntegrationError, UnknownNameError, did_you_mean
from ..integrate import DT, _exact_event, _step
from ..parse import symbol
from ..symbolic import draws, substitute
from .common import ELAPSED, POPULATION_SITES
from .common import add_arg as _add
from .common import draw_locals as _draw_locals
from .nodes import Accumulate, Arg, Assign, Deliver, Summed, SynapseUpdate, Trace

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


def deliver(net, proj, args, direction) -> list:
    """Run the statements of ``direction`` for the events due this step. With per-synapse
    delays (pre pathway), the events of each synapse are due ``delays[k]`` steps after its
    source's spike: spikes up to the longest delay ago are scanned, earliest first, as
    Brian2's spike queue orders them."""
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
    site = POPULATION_SITES * len(net.populations) \
        + 2 * list(net.projections).index(proj.name) + (direction == "post")
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
    per_synapse = direction == "pre" and proj.heterogeneous
    if per_synapse:
        args += [Arg(f"{P}__delays", "int64", 1, "delays"),
                 Arg(f"{P}__maxdelay", "int64", 0, "max_delay")]
    elif direction == "pre":
        args.append(Arg(f"{P}__delay", "int64", 0, "delay"))
    written = dict(kinds)
    guards = tuple((ren[n], *g) for side, names, pop in (("pre", pre_v, pre), ("post", post_v,
                                                                                 post))
                   for n, v in names.items() if written.get(ren[n]) == side
                   and (g := _clamped(pop, v)) is not None)
    return [Deliver(P, direction, f"{(pre if direction == 'pre' else post).name}___ring",
                    f"{P}__maxdelay" if per_synapse else f"{P}__delay", syn_t,
                    tuple((ren[n], f"{pre.name}__{v}") for n, v in pre_v.items()),
                    tuple((ren[n], f"{post.name}__{v}") for n, v in post_v.items()),
                    par_t, tr_nodes, tuple(body), tuple(written.items()), guards, drawn,
                    tuple((ren[n], kind, *refractory_args(getattr(proj, side).population),
                           "j" if side == "pre" else "post")
                          for n, (kind, side) in sorted(spike_v.items())),
                    f"{P}__delays" if per_synapse else None)]


def accumulates(proj) -> bool:
    """True if ``proj`` (per-synapse delays) can add its input into a ring of future input
    at spike time (:class:`Accumulate`, the fast path): one ``post_var += expr`` statement
    whose ``expr`` reads only synaptic values no statement changes and parameters, so that
    its value at spike time is its value when due. Anything else is delivered when due
    (:func:`deliver` with per-synapse delays), as Brian2's spike queue does."""
    model, post = proj.model, proj.post.population
    if model.on_post or model.traces or model.clock_driven or len(model.on_pre) != 1:
        return False
    stmt = model.on_pre[0]
    target = stmt.target[:-5] if stmt.target.endswith("_post") else stmt.target
    if stmt.op not in ("+=", "-=") or target not in post.model.state_names \
            or draws(stmt.expr):
        return False
    names = {x.name for x in model.eqs.resolve(stmt.expr).free_symbols}
    return names <= (set(model.variables) | set(proj.params) | {"dt"})


def accumulate(proj, args) -> Accumulate:
    """The fast path of per-synapse delays (see :func:`accumulates`)."""
    P = proj.name  # noqa: N806
    stmt, post = proj.model.on_pre[0], proj.post.population
    expr = proj.model.eqs.resolve(stmt.expr) * (1 if stmt.op == "+=" else -1)
    syn, pre_v, post_v, params = _resolve_synaptic(proj, {x.name for x in expr.free_symbols})
    target = stmt.target[:-5] if stmt.target.endswith("_post") else stmt.target
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


def synapse_update(proj, args) -> SynapseUpdate:
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


def summed(proj, args) -> Summed:
    P, post = proj.name, proj.post.population  # noqa: N806
    exprs = [s.expr for s in proj.model.summed]
    syn_t, pre_t, post_t, par_t, ren = _synaptic_locals(proj, exprs, args)
    sums = []
    for s in proj.model.summed:
        _add(args, Arg(f"{post.name}__{s.target}", "float", 2, "summed"))
        sums.append((f"{post.name}__{s.target}", substitute(s.expr, ren)))
    return Summed(P, syn_t, pre_t, post_t, par_t, tuple(sums))


def summed_targets(net) -> dict[str, set[str]]:
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
