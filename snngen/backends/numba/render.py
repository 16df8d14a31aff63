"""Program -> Numba source: turn IR nodes into plain views, print expressions, fill the template.

Templates receive only strings and plain metadata; every expression is printed here by the
strict :class:`~snngen.backends.numba.printer.NumbaPrinter`.
"""

from __future__ import annotations

import json

import sympy as sp

from ... import __version__
from ...ir.nodes import (
    NEVER,
    Accumulate,
    ArrayStep,
    Deliver,
    NeuronStep,
    PoissonStep,
    Program,
    RateRecord,
    Regularly,
    Reset,
    SpikeRecord,
    StateRecord,
    Summed,
    SynapseUpdate,
)
from ...ir.synapses import LASTSPIKE_NEVER
from ..templates import environment
from .printer import NumbaPrinter, NumpyConstPrinter

# No nnan/ninf, and no nsz: with nsz + reassoc LLVM folds the isfinite test away (tested).
FASTMATH = "{'arcp', 'contract', 'afn', 'reassoc'}"


def _draw_code(draws, index: str, batch: str = "b") -> list[tuple[str, str]]:
    """Numba code of rand()/randn() draws (float64): (local, call)."""
    return [(local, f"_uniform(seed, step, {index}, {batch}, {stream})" if kind == "uniform"
             else f"_normal2(seed, step, {index}, {batch}, {stream})[0]")
            for local, kind, stream in draws]


#: The counter words of a synapse's draws: its index k (low 32 bits), and the batch entry
#: with k's high bits above bit 20
SYNAPSE_BATCH = "b | ((k >> 32) << 20)"


def _neuron_view(node: NeuronStep, index: int, pr: NumbaPrinter, program: Program) -> dict:
    scalar = [(local, arg) for local, arg, per in node.params + node.consts if not per]
    arrays = [(local, arg) for local, arg, per in node.params + node.consts if per]
    states = [(s.local, s.arg) for s in node.states]
    written = {a.target for a in node.reset}
    return {
        "kind": "neuron", "name": node.pop, "n": node.n, "index": index,
        "scalar_loads": scalar, "array_loads": arrays, "inputs": list(node.inputs),
        "states": states, "refractory": node.refractory,
        "refractory_per_neuron": node.refractory is not None
        and program.arg(node.refractory).ndim == 1,
        "noise": list(node.noise), "summed": list(node.summed),
        "spike_vars": [(loc, f"_f({node.pop}_last_b[i] * dt if {node.pop}_last_b[i] != {NEVER} "
                             f"else {LASTSPIKE_NEVER})" if kind == "lastspike"
                        else f"_f(0.0 if {node.pop}_refr else 1.0)")
                       for loc, kind in node.spike_vars],
        "reset_spike_vars": [(loc, f"_f({node.pop}_last_b[i] * dt)" if kind == "lastspike"
                              else "_f(0.0)") for loc, kind in node.spike_vars],
        "refractory_condition": None if node.refractory_condition is None
        else pr.doprint(node.refractory_condition),
        "draws": _draw_code(node.draws, "i"), "reset_draws": _draw_code(node.reset_draws, "i"),
        "body": [(a.target, pr.doprint(a.expr)) for a in node.body],
        "stores": [((local, arg), new) for (local, arg), (_, new)
                   in zip(states, node.updates)],
        "condition": pr.doprint(node.condition) if node.condition is not None else None,
        "reset": [(a.target, pr.doprint(a.expr)) for a in node.reset],
        "reset_stores": [(local, arg) for local, arg in states if local in written],
    }


def _not_refractory(program: Program, last: str, steps: str, index: str) -> str:
    """Numba test that neuron ``index`` is not refractory at the delivery stage of this step
    (its last spike, set at the threshold, is more than its refractory steps ago)."""
    if program.arg(steps).role == "not_refractory":  # refractoriness given as a condition
        return f"{steps}[b, {index}] != 0"
    per = "[" + index + "]" if program.arg(steps).ndim else ""
    return f"step - {last}[b, {index}] > {steps}{per}"


def _synapse_view(node, pr, program: Program) -> dict:
    kinds = dict(getattr(node, "writes", ()))
    view = {
        "proj": node.proj, "ring": node.source_ring,
        "syn": list(node.syn), "pre_vars": list(node.pre_vars),
        "post_vars": list(getattr(node, "post_vars", ())), "params": list(node.params),
        "traces": [(t.local, t.arg, pr.doprint(t.decay)) for t in getattr(node, "traces", ())],
        "body": [(a.target, pr.doprint(a.expr)) for a in getattr(node, "body", ())],
        "draws": _draw_code(getattr(node, "draws", ()), "k", SYNAPSE_BATCH),
        "spike_vars": [(loc, f"_f({last}[b, {idx}] * dt if {last}[b, {idx}] != {NEVER} "
                             f"else {LASTSPIKE_NEVER})" if kind == "lastspike"
                        else _not_refractory(program, last, steps, idx))
                       for loc, kind, last, steps, idx in getattr(node, "spike_vars", ())],
    }
    traced = {t.local for t in getattr(node, "traces", ())}
    guards = {loc: (last, steps) for loc, last, steps in getattr(node, "guards", ())}

    def guard(loc, index):
        return _not_refractory(program, *guards[loc], index) if loc in guards else None
    view["store_syn"] = [(loc, arg) for loc, arg, _ in node.syn
                         if kinds.get(loc) == "syn" or loc in traced]
    view["store_pre"] = [(loc, arg, guard(loc, "j")) for loc, arg in node.pre_vars
                         if kinds.get(loc) == "pre"]
    view["store_post"] = [(loc, arg, guard(loc, "post")) for loc, arg in view["post_vars"]
                          if kinds.get(loc) == "post"]
    view["guard"] = _not_refractory(program, *node.guard, f"{node.proj}__post_start + i") \
        if getattr(node, "guard", None) else None
    return view


def _regularly_view(node: Regularly, pr) -> dict:
    """A run_regularly operation (both backends print their expressions with ``pr``)."""
    return {
        "kind": "regularly", "name": node.pop, "label": node.label, "n": node.n,
        "every": node.every, "states": [(s.local, s.arg) for s in node.states],
        "scalar_loads": [(loc, arg) for loc, arg, per in node.params if not per],
        "array_loads": [(loc, arg) for loc, arg, per in node.params if per],
        "draws": node.draws, "body": [(a.target, pr.doprint(a.expr)) for a in node.body],
        "stores": list(node.writes),
    }


def _all_synapses_view(node, pr: NumbaPrinter) -> dict:
    """A loop over every synapse of a projection: clock-driven update or summed variables."""
    update = isinstance(node, SynapseUpdate)
    return {
        "kind": "synapse_update" if update else "summed", "proj": node.proj,
        "syn": list(node.syn), "pre_vars": list(node.pre_vars),
        "post_vars": list(node.post_vars), "params": list(node.params), "traces": [],
        "spike_vars": [],
        "body": [(a.target, pr.doprint(a.expr)) for a in getattr(node, "body", ())],
        "store_syn": [(loc, new) for loc, new in getattr(node, "updates", ())],
        "sums": [(target, pr.doprint(expr)) for target, expr in getattr(node, "sums", ())],
    }


def views(program: Program, pr: NumbaPrinter) -> list[dict]:
    out, neurons = [], {}
    for k, node in enumerate(program.steps):
        if isinstance(node, NeuronStep):
            neurons[node.pop] = _neuron_view(node, k, pr, program)
            out.append(neurons[node.pop])
        elif isinstance(node, Reset):
            out.append({**neurons[node.pop], "kind": "reset"})
        elif isinstance(node, Deliver):
            out.append({**_synapse_view(node, pr, program), "kind": "deliver",
                        "direction": node.direction, "delay": node.delay,
                        "delays": node.delays})
        elif isinstance(node, Accumulate):
            out.append({**_synapse_view(node, pr, program), "kind": "accumulate",
                        "target": node.target, "expr": pr.doprint(node.expr)})
        elif isinstance(node, (SynapseUpdate, Summed)):
            out.append(_all_synapses_view(node, pr))
        elif isinstance(node, Regularly):
            out.append({**_regularly_view(node, pr), "draws": _draw_code(node.draws, "i")})
        elif isinstance(node, PoissonStep):
            out.append({"kind": "poisson", "name": node.pop, "n": node.n, "rate": node.rate,
                        "per_neuron": node.per_neuron, "stream": node.stream})
        elif isinstance(node, ArrayStep):
            out.append({"kind": "array", "name": node.pop, "n": node.n})
        elif isinstance(node, SpikeRecord):
            out.append({"kind": "spikes", "name": node.pop, "ring": node.ring, "out": node.out,
                        "n": f"{node.pop}___n"})
        elif isinstance(node, RateRecord):
            out.append({"kind": "rate", "name": node.pop, "ring": node.ring, "out": node.out})
        elif isinstance(node, StateRecord):
            out.append({"kind": "state", "name": node.pop, "states": list(node.states),
                        "out": node.out})
        else:  # pragma: no cover - the verifier rejects unknown nodes first
            raise TypeError(f"unknown IR node {type(node).__name__}")
    return out


def _constants_views(constants: dict) -> list[dict]:
    """Numpy code computing each population's loop-invariant values, in float64."""
    pr = NumpyConstPrinter()
    out = []
    for pop, c in constants.items():
        exprs = [e for _, e in c["values"]] + [x for p in c["propagators"] for x in p.a]
        names = sorted({s.name for e in exprs for s in e.free_symbols} - {"dt"}
                       - {s.name for s, _ in c["values"]}
                       - {s.name for p in c["propagators"] for _, s in p.phi + p.psi})
        ren = {sp.Symbol(n, real=True): sp.Symbol(f"p_{n}", real=True) for n in names}
        lines = []
        for p in c["propagators"]:
            rows = ", ".join("[" + ", ".join(pr.doprint(x.xreplace(ren)) for x in p.a.row(r))
                             + "]" for r in range(p.a.shape[0]))
            lines.append(f"{p.name}_phi, {p.name}_psi = propagate(stack([{rows}]), dt)")
            for kind, entries in (("phi", p.phi), ("psi", p.psi)):
                lines += [f"{s.name} = {p.name}_{kind}[..., {i}, {j}]" for (i, j), s in entries]
        for sym, expr in c["values"]:
            code = pr.doprint(expr.xreplace(ren))
            if sym.name == "_refsteps":  # Brian2's timestep(): the floor, 1e-3 dt tolerance
                code = f"np.maximum(np.floor({code}).astype(np.int64) - 1, 0)"
            lines.append(f"{sym.name} = {code}")
        out.append({"name": pop, "params": [(f"p_{n}", n) for n in names], "lines": lines,
                    "entries": [(arg, sym.name) for arg, sym, _ in c["outputs"]]})
    return out


def render(program: Program, constants: dict) -> str:
    """The complete source text of the generated module."""
    import numba

    pr = NumbaPrinter(program.dtype)
    spec = {"args": [[a.name, a.dtype, a.ndim, a.role] for a in program.args],
            "rings": [list(r) for r in program.rings], "dtype": program.dtype,
            "constants": {pop: [[a, bool(per)] for a, _, per in c["outputs"]]
                          for pop, c in constants.items()}}
    template = environment().get_template("numba/program.py.j2")
    return template.render(
        version=__version__, numba_version=numba.__version__, dtype=program.dtype,
        flags=f"fastmath={FASTMATH} boundscheck=False", fastmath=FASTMATH,
        spec=repr(json.loads(json.dumps(spec))), args=[a.name for a in program.args],
        views=views(program, pr), constants=_constants_views(constants)) + "\n"
