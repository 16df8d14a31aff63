"""Program -> CUDA C source plus a launch plan.

One ``__global__`` kernel per IR node (two for per-synapse delays), plus ``step_begin`` and
``step_end``. Every kernel takes the same parameter list (:func:`kernel_params`): the run
clock and status on the device, the seed, every program argument, and every array's shape.
The step number is read from the device clock, so a sequence of launches never changes from
one step to the next (which lets it be captured once as a CUDA graph and replayed).

The same source compiles for the GPU with NVRTC and for the CPU with ``templates/cuda/shim.h``
(:mod:`snngen.backends.cuda.hostemu`), which is how CI checks it without a GPU.

Synaptic events are delivered in parallel, one block per spike and one thread per synapse,
when the statements allow it: writes to synaptic variables are always safe (each synapse is
visited once per step), and writes to pre- or postsynaptic variables are safe when they are
increments ``x = x + e`` (``e`` free of ``x``, ``x`` not read elsewhere), done with
``atomicAdd``. Anything else runs serially, in the Numba backend's order, and the plan says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from .printer import CPrinter

C_TYPES = {"float64": "double", "int32": "int", "int64": "long long", "uint8": "unsigned char"}


def c_type(kind: str, dtype: str) -> str:
    if kind == "float":
        return "float" if dtype == "float32" else "double"
    return C_TYPES[kind]


def kernel_params(program: Program) -> list[tuple[str, str, int, str]]:
    """The common parameter list: (C type, name, ndim, dtype kind); arrays are pointers.

    After the arguments come ``<name>__d<k>`` (long long) for every dimension of every array.
    """
    out = [("long long*", "_clock", 1, "int64"), ("long long*", "_status", 1, "int64"),
           ("unsigned long long", "_seed", 0, "uint64")]
    for a in program.args:
        t = c_type(a.dtype, program.dtype)
        out.append((t + "*" if a.ndim else t, a.name, a.ndim, a.dtype))
    for a in program.args:
        out += [("long long", f"{a.name}__d{k}", 0, "int64") for k in range(a.ndim)]
    return out


@dataclass
class Launch:
    """How the host launches one kernel: grid over ``what`` (a size argument), x batch."""

    kernel: str
    node: str            # human-readable: which IR node, and the strategy
    shape: str           # "neurons:<size arg>", "events:<index arg>", "batch", "one", "begin"
    block: int = 256
    extra: dict = field(default_factory=dict)


def _increment(assign, local: str):
    """``e`` if ``assign`` is ``local = local + e`` with ``e`` free of ``local``, else None."""
    sym = sp.Symbol(local, real=True)
    delta = sp.expand(assign.expr - sym)
    return None if sym in delta.free_symbols else delta


def _deliver_plan(node) -> tuple[str, dict, str]:
    """('parallel', {local: delta}, '') when events can run concurrently, else ('serial', {},
    reason). Shared writes: pre- and postsynaptic variables (synaptic ones are per thread)."""
    kinds = dict(getattr(node, "writes", ()))
    shared = {loc for loc, kind in kinds.items() if kind in ("pre", "post")}

    def user(loc):  # the name as the user wrote it
        return loc[len(node.proj) + 1:]
    incs = {}
    for a in node.body:
        if a.target not in shared:
            continue
        if a.target in incs:
            return "serial", {}, f"'{user(a.target)}' is written twice"
        delta = _increment(a, a.target)
        if delta is None:
            return "serial", {}, f"'{user(a.target)}' is not written as an increment"
        incs[a.target] = delta
    for a in node.body:
        for loc in shared:
            reads = a.expr.free_symbols if a.target != loc else incs[loc].free_symbols
            if sp.Symbol(loc, real=True) in reads:
                return "serial", {}, (f"'{user(loc)}' is read, and other events may "
                                     "change it")
    return "parallel", incs, ""


def _not_refractory(program: Program, last: str, steps: str, index: str) -> str:
    """C test that neuron ``index`` is not refractory at the delivery stage of this step
    (its last spike, set at the threshold, is more than its refractory steps ago)."""
    if program.arg(steps).role == "not_refractory":  # refractoriness given as a condition
        return f"{steps}[b * {steps}__d1 + {index}] != 0"
    per = "[" + index + "]" if program.arg(steps).ndim else ""
    return f"step - {last}[b * {last}__d1 + {index}] > {steps}{per}"


def _synapse_view(node, pr: CPrinter, program: Program) -> dict:
    kinds = dict(getattr(node, "writes", ()))
    traced = {t.local for t in getattr(node, "traces", ())}
    guards = {loc: (last, steps) for loc, last, steps in getattr(node, "guards", ())}

    def guard(loc, index):
        return _not_refractory(program, *guards[loc], index) if loc in guards else None
    strategy, incs, reason = ("parallel", {}, "") if isinstance(node, Accumulate) \
        else _deliver_plan(node)
    body = []
    for a in getattr(node, "body", ()):
        if a.target in incs:
            side = kinds[a.target]
            arg = dict(node.pre_vars if side == "pre" else node.post_vars)[a.target]
            index = "j" if side == "pre" else "post"
            body.append(("atomic", arg, index, pr.doprint(incs[a.target]),
                         guard(a.target, index)))
        else:
            body.append(("assign", a.target, pr.doprint(a.expr)))
    return {
        "proj": node.proj, "ring": node.source_ring, "strategy": strategy, "reason": reason,
        "syn": [(loc, arg, batched) for loc, arg, batched in node.syn],
        "pre_vars": list(node.pre_vars), "post_vars": list(getattr(node, "post_vars", ())),
        "params": list(node.params),
        "traces": [(t.local, t.arg, pr.doprint(t.decay)) for t in getattr(node, "traces", ())],
        "body": body,
        "draws": _draw_code(getattr(node, "draws", ()), "k", "b | ((k >> 32) << 20)"),
        "spike_vars": [(loc, f"({last}[b * {last}__d1 + {idx}] == {NEVER} ? "
                             f"{LASTSPIKE_NEVER!r} : (double){last}[b * {last}__d1 + {idx}] * dt)"
                        if kind == "lastspike"
                        else _not_refractory(program, last, steps, idx))
                       for loc, kind, last, steps, idx in getattr(node, "spike_vars", ())],
        "store_syn": [(loc, arg, b) for loc, arg, b in node.syn
                      if kinds.get(loc) == "syn" or loc in traced],
        "store_pre": [(loc, arg, guard(loc, "j")) for loc, arg in node.pre_vars
                      if kinds.get(loc) == "pre" and loc not in incs],
        "store_post": [(loc, arg, guard(loc, "post")) for loc, arg in getattr(node, "post_vars",
                                                                              ())
                       if kinds.get(loc) == "post" and loc not in incs],
        "guard": _not_refractory(program, *node.guard, f"{node.proj}__post_start + i")
        if getattr(node, "guard", None) else None,
    }


def _draw_code(draws, index: str, batch: str = "b") -> list[tuple[str, str]]:
    """CUDA C of rand()/randn() draws (double): (local, expression), as the Numba kernels."""
    out = []
    for local, kind, stream in draws:
        out.append((local, f"snn_uniform(_seed, step, {index}, {batch}, {stream}u)"
                    if kind == "uniform" else f"snn_normal(_seed, step, {index}, {batch}, "
                    f"{stream}u)"))
    return out


def _neuron_view(node: NeuronStep, index: int, pr: CPrinter, program: Program) -> dict:
    states = [(s.local, s.arg) for s in node.states]
    last = f"{node.pop}___last[b * {node.pop}___last__d1 + i]"  # the step of the last spike
    written = {a.target for a in node.reset}
    return {
        "kind": "neuron", "name": node.pop, "n": node.n, "index": index,
        "scalar_loads": [(loc, arg) for loc, arg, per in node.params + node.consts if not per],
        "array_loads": [(loc, arg) for loc, arg, per in node.params + node.consts if per],
        "inputs": list(node.inputs), "states": states, "refractory": node.refractory,
        "refractory_per_neuron": node.refractory is not None
        and program.arg(node.refractory).ndim == 1,
        "noise": list(node.noise), "summed": list(node.summed),
        "spike_vars": [(loc, f"({last} == {NEVER} ? {LASTSPIKE_NEVER!r} : (double){last} * dt)"
                        if kind == "lastspike" else f"({node.pop}_refr ? 0.0 : 1.0)")
                       for loc, kind in node.spike_vars],
        "reset_spike_vars": [(loc, f"(double){last} * dt" if kind == "lastspike" else "0.0")
                             for loc, kind in node.spike_vars],
        "refractory_condition": None if node.refractory_condition is None
        else pr.doprint(node.refractory_condition),
        "draws": _draw_code(node.draws, "i"), "reset_draws": _draw_code(node.reset_draws, "i"),
        "body": [(a.target, pr.doprint(a.expr)) for a in node.body],
        "stores": [(arg, new) for (local, arg), (_, new) in zip(states, node.updates)],
        "updates": [(local, new) for local, new in node.updates],
        "condition": pr.doprint(node.condition) if node.condition is not None else None,
        "reset": [(a.target, pr.doprint(a.expr)) for a in node.reset],
        "reset_stores": [(local, arg) for local, arg in states if local in written],
        "spikes": node.spikes,
    }


def build(program: Program) -> tuple[list[dict], list[Launch]]:
    pr = CPrinter(program.dtype)
    views, plan = [], [Launch("step_begin", "clear this step's spike counts", "begin")]
    neurons = {}
    for k, node in enumerate(program.steps):
        kname = f"k{k}_{type(node).__name__.lower()}_{getattr(node, 'pop', None) or node.proj}"
        if isinstance(node, NeuronStep):
            v = _neuron_view(node, k, pr, program)
            neurons[node.pop] = v
            plan.append(Launch(kname, f"neurons of {node.pop}", f"neurons:{node.n}"))
        elif isinstance(node, Reset):
            v = {**neurons[node.pop], "kind": "reset"}
            plan.append(Launch(kname, f"reset of {node.pop}'s spikes", f"spikes:{node.pop}___n"))
        elif isinstance(node, Deliver):
            v = {**_synapse_view(node, pr, program), "kind": "deliver",
                 "direction": node.direction, "delay": node.delay, "delays": node.delays}
            index = f"{node.proj}__indptr" if node.direction == "pre" else \
                f"{node.proj}__tindptr"
            strategy = v["strategy"] + (f" ({v['reason']})" if v["reason"] else "")
            plan.append(Launch(kname, f"{node.direction}synaptic events of {node.proj}, "
                               f"{strategy}",
                               f"events:{index}" if v["strategy"] == "parallel" else "batch",
                               block=1 if v["strategy"] == "serial" else 64))
        elif isinstance(node, Accumulate):
            v = {**_synapse_view(node, pr, program), "kind": "accumulate",
                 "target": node.target, "expr": pr.doprint(node.expr)}
            plan.append(Launch(kname, f"delayed events of {node.proj} into the ring, parallel",
                               f"events:{node.proj}__indptr", block=64))
            plan.append(Launch(kname + "_apply", f"due input of {node.proj}",
                               f"range:{node.proj}"))
        elif isinstance(node, Regularly):
            from ..numba.render import _regularly_view
            v = {**_regularly_view(node, pr), "draws": _draw_code(node.draws, "i")}
            plan.append(Launch(kname, f"run_regularly {node.label} on {node.pop}",
                               f"neurons:{node.n}"))
        elif isinstance(node, (SynapseUpdate, Summed)):
            update = isinstance(node, SynapseUpdate)
            v = {"kind": "all_synapses", "proj": node.proj, "syn": list(node.syn),
                 "pre_vars": list(node.pre_vars), "post_vars": list(node.post_vars),
                 "params": list(node.params), "traces": [], "spike_vars": [],
                 "body": [(a.target, pr.doprint(a.expr)) for a in getattr(node, "body", ())],
                 "stores": [(arg, batched, dict(getattr(node, "updates", ())).get(loc))
                            for loc, arg, batched in node.syn
                            if loc in dict(getattr(node, "updates", ()))],
                 "sums": [(target, pr.doprint(e)) for target, e in getattr(node, "sums", ())]}
            if not update:
                plan.append(Launch(kname + "_zero", f"summed variables of {node.proj}: zero",
                                   f"range:{node.proj}"))
            plan.append(Launch(kname, (f"clock-driven synaptic equations of {node.proj}"
                                       if update else f"summed variables of {node.proj}: "
                                       "add (atomic)") + ", one thread per presynaptic row",
                               f"rows:{node.proj}"))
        elif isinstance(node, PoissonStep):
            v = {"kind": "poisson", "name": node.pop, "n": node.n, "rate": node.rate,
                 "per_neuron": node.per_neuron, "stream": node.stream}
            plan.append(Launch(kname, f"Poisson sources {node.pop}", f"neurons:{node.n}"))
        elif isinstance(node, ArrayStep):
            v = {"kind": "array", "name": node.pop, "n": node.n}
            plan.append(Launch(kname, f"spike-time source {node.pop}, serial per batch entry",
                               "batch", block=1))
        elif isinstance(node, SpikeRecord):
            v = {"kind": "spikes", "name": node.pop, "ring": node.ring, "out": node.out,
                 "n": f"{node.pop}___n"}
            plan.append(Launch(kname, f"spike monitor {node.out}", f"spikes:{node.pop}___n"))
        elif isinstance(node, RateRecord):
            v = {"kind": "rate", "name": node.pop, "ring": node.ring, "out": node.out}
            plan.append(Launch(kname, f"rate monitor {node.out}", "batch", block=1))
        elif isinstance(node, StateRecord):
            v = {"kind": "state", "name": node.pop, "states": list(node.states),
                 "out": node.out}
            plan.append(Launch(kname, f"state monitor {node.out}", f"monitor:{node.out}__idx"))
        else:  # pragma: no cover - the verifier rejects unknown nodes first
            raise TypeError(f"unknown IR node {type(node).__name__}")
        v["kernel"] = kname
        views.append(v)
    plan.append(Launch("step_end", "advance the clock", "one", block=1))
    return views, plan


def render(program: Program) -> tuple[str, list[Launch]]:
    """The CUDA C source of ``program`` and its launch plan (one entry per kernel launch)."""
    views, plan = build(program)
    params = kernel_params(program)
    template = environment().get_template("cuda/program.cu.j2")
    source = template.render(
        version=__version__, dtype=program.dtype,
        real="float" if program.dtype == "float32" else "double",
        params=[f"{t} {n}" if n in ("_seed",) or not t.endswith("*") else
                f"{t} __restrict__ {n}" for t, n, _, _ in params],
        views=views, rings=[r for r, _ in program.rings],
        spike_monitors=[v for v in views if v["kind"] == "spikes"],
        state_monitors=[v for v in views if v["kind"] == "state"])
    return source, plan


def describe(plan: list[Launch]) -> str:
    """The launch plan as text: one line per kernel, with its strategy."""
    return "\n".join(f"{i:2d}. {launch.kernel:40s} {launch.node}" for i, launch in
                     enumerate(plan))
