"""The IR verifier: every name an expression uses is defined, every argument exists."""

from __future__ import annotations

from ..errors import SnngenError
from .nodes import (
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

_GLOBAL = {"t", "dt", "i"}


class IRError(SnngenError):
    """The kernel IR is inconsistent (a compiler bug, not a user error)."""


def _check(expr, defined, where):
    if expr is None:
        return
    missing = {s.name for s in expr.free_symbols} - defined
    if missing:
        raise IRError(f"{where}: uses undefined {sorted(missing)}")


def verify(program: Program) -> Program:
    """Raise :class:`IRError` if ``program`` is malformed; return it unchanged otherwise."""
    args = {a.name for a in program.args}
    updated = set()
    for node in program.steps:
        where = f"{type(node).__name__} {getattr(node, 'pop', getattr(node, 'proj', ''))}"
        needed = set()
        if isinstance(node, NeuronStep):
            defined = set(_GLOBAL) | {f"{node.pop}_N", f"{node.pop}_refr"}
            defined |= {s.local for s in node.states}
            defined |= {loc for loc, _, _ in node.params + node.consts + node.inputs}
            defined |= {loc for a, b, _ in node.noise for loc in (a, b) if loc}
            defined |= {loc for loc, _, _ in node.draws}
            defined |= {loc for loc, _ in node.summed}
            defined |= {loc for loc, _ in node.spike_vars}
            needed |= {a for _, a in node.summed}
            needed |= {s.arg for s in node.states} | {node.n}
            needed |= {a for _, a, _ in node.params + node.consts + node.inputs}
            for a in node.body:
                _check(a.expr, defined, where)
                defined.add(a.target)
            for s, new in node.updates:
                if new not in defined or s not in {x.local for x in node.states}:
                    raise IRError(f"{where}: update {s} <- {new} is not defined")
            _check(node.condition, defined, where)
            _check(node.refractory_condition, defined, where)
            for a in node.reset:
                _check(a.expr, defined | {loc for loc, _, _ in node.reset_draws}, where)
            if node.refractory:
                needed |= {node.refractory, f"{node.pop}___last"}
            if node.spikes:
                needed |= {node.spikes, node.spikes + "n", f"{node.pop}__z"}
            updated.add(node.pop)
            if node.spikes and node.reset and not any(
                    isinstance(r, Reset) and r.pop == node.pop for r in program.steps):
                raise IRError(f"{where}: has a reset but no Reset node")
        elif isinstance(node, Reset):
            if node.pop not in updated:
                raise IRError(f"{where}: comes before the NeuronStep of its population")
            needed |= {node.spikes, node.spikes + "n"}
        elif isinstance(node, (Deliver, Accumulate)):
            defined = set(_GLOBAL) | {loc for loc, *_ in node.syn + node.params + node.pre_vars}
            defined |= {loc for loc, _ in getattr(node, "post_vars", ())}
            defined.add(f"{node.proj}__elapsed")
            defined |= {loc for loc, _, _ in getattr(node, "draws", ())}
            if getattr(node, "delays", None):
                needed |= {node.delays, node.delay}
            for loc, _, last, steps, _ in getattr(node, "spike_vars", ()):
                defined.add(loc)
                needed |= {last, steps}
            needed |= {a for _, a, *_ in node.syn + node.params + node.pre_vars}
            needed |= {node.source_ring, f"{node.proj}__pre_start", f"{node.proj}__pre_stop",
                       f"{node.proj}__indptr", f"{node.proj}__indices"}
            for tr in getattr(node, "traces", ()):
                _check(tr.decay, defined, where)
            for a in getattr(node, "body", ()):
                _check(a.expr, defined, where)
                if a.target not in defined:
                    raise IRError(f"{where}: assigns to unknown {a.target}")
            for _, last, steps in getattr(node, "guards", ()):
                needed |= {last, steps}
            if isinstance(node, Accumulate):
                _check(node.expr, defined, where)
                needed |= {node.target, node.buffer} | set(node.guard or ())
        elif isinstance(node, Regularly):
            defined = set(_GLOBAL) | {f"{node.pop}_N"} | {s.local for s in node.states}
            defined |= {loc for loc, _, _ in node.params} | {loc for loc, _, _ in node.draws}
            needed |= {s.arg for s in node.states} | {a for _, a, _ in node.params}
            needed |= {node.n, node.every}
            for a in node.body:
                _check(a.expr, defined, where)
                if a.target not in {s.local for s in node.states}:
                    raise IRError(f"{where}: assigns to {a.target}, not a state")
        elif isinstance(node, (SynapseUpdate, Summed)):
            defined = set(_GLOBAL) | {loc for loc, *_ in node.syn + node.params + node.pre_vars
                                      + node.post_vars}
            needed |= {a for _, a, *_ in node.syn + node.params + node.pre_vars
                       + node.post_vars}
            needed |= {f"{node.proj}__{f}" for f in ("indptr", "indices", "pre_start",
                                                     "pre_stop", "post_start", "post_stop")}
            for a in getattr(node, "body", ()):
                _check(a.expr, defined, where)
                defined.add(a.target)
            for s, new in getattr(node, "updates", ()):
                if new not in defined or s not in {loc for loc, *_ in node.syn}:
                    raise IRError(f"{where}: update {s} <- {new} is not defined")
            for target, expr in getattr(node, "sums", ()):
                _check(expr, defined, where)
                needed.add(target)
        elif isinstance(node, (PoissonStep, ArrayStep)):
            needed |= {node.n} | ({node.spikes} if node.spikes else set())
        elif isinstance(node, (SpikeRecord, RateRecord)):
            needed.add(node.ring)
        elif isinstance(node, StateRecord):
            needed |= set(node.states)
        else:
            raise IRError(f"unknown IR node {type(node).__name__}")
        if needed - args:
            raise IRError(f"{where}: arguments {sorted(needed - args)} are not declared")
    return program
