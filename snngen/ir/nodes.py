"""The kernel IR: frozen dataclasses for structure, ``sympy.Expr`` for scalar maths.

A :class:`Program` is the whole fused time loop of a network: its arguments (:class:`Arg`) and,
in step order, one node per piece of work. The order is Brian2's schedule: state monitors
(:class:`StateRecord`, values at the start of the step), state updates and thresholds
(:class:`NeuronStep`, :class:`PoissonStep`, :class:`ArrayStep`), spike monitors, synaptic
propagation (:class:`Deliver`, :class:`Accumulate`), then resets (:class:`Reset`).
Expressions inside a node only use the node's *local names* (listed by
:func:`snngen.ir.verify.verify`); the renderer of a backend decides how locals are loaded and
stored. No code strings live here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

#: Last-spike step of neurons that never spiked; steps are int32 (see Simulator.run).
NEVER = -(2**30)


@dataclass(frozen=True)
class Arg:
    """One argument of the compiled program.

    ``role``: ``state`` (B x n), ``param`` (scalar), ``param_array`` (n), ``const``
    (scalar, computed once), ``const_array`` (n), ``syn`` (per-synapse, Bs x S), ``index``
    (connectivity), ``ring`` (spike history), ``monitor`` (output), ``input`` (time table).
    """

    name: str
    dtype: str  # "float", "float64", "int32", "int64", "uint8"
    ndim: int
    role: str


@dataclass(frozen=True)
class Assign:
    """``target = expr`` on locals; targets are new locals unless they name a state."""

    target: str
    expr: sp.Basic


@dataclass(frozen=True)
class StateVar:
    """A state variable of a population: local name and argument holding it."""

    local: str
    arg: str


@dataclass(frozen=True)
class NeuronStep:
    """State update and threshold of one population, for one step; its ``reset`` statements
    run later in the step, where its :class:`Reset` node stands."""

    pop: str
    n: str                     # argument holding the population size
    states: tuple[StateVar, ...]
    params: tuple[tuple[str, str, bool], ...]     # (local, arg, per_neuron)
    inputs: tuple[tuple[str, str, bool], ...]     # time-varying tables: (local, arg, per_neuron)
    consts: tuple[tuple[str, str, bool], ...]     # hoisted constants: (local, arg, per_neuron)
    body: tuple[Assign, ...]                      # temporaries
    updates: tuple[tuple[str, str], ...]          # (state local, new-value local)
    condition: sp.Basic | None
    reset: tuple[Assign, ...]
    refractory: str | None     # argument of per-neuron refractory steps (int32), or None
    spikes: str | None         # ring argument prefix if spikes are needed, else None
    finite_check: bool = True
    #: standard normal draws before ``body`` (white noise): (local, local or "", stream), two
    #: draws per call of :func:`snngen.draw.normal2` (the second local empty if unused)
    noise: tuple[tuple[str, str, int], ...] = ()
    #: rand()/randn() of (constant over dt) subexpressions and the threshold, drawn per
    #: neuron before ``body``, and of the reset, drawn before the reset statements:
    #: (local, "uniform" or "normal", stream)
    draws: tuple[tuple[str, str, int], ...] = ()
    reset_draws: tuple[tuple[str, str, int], ...] = ()
    #: parameters set by a synapse's (summed) variable: (local, (batch, n) argument)
    summed: tuple[tuple[str, str], ...] = ()
    #: refractoriness given as a condition (on the state before the update): ``refractory``
    #: is then the (batch, n) not-refractory flags, updated before the state update
    refractory_condition: sp.Basic | None = None
    #: Brian2's ``lastspike``/``not_refractory`` read by the model: (local, name), computed
    #: per neuron after the refractory test (and in the reset: the spike of this step)
    spike_vars: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Regularly:
    """A run_regularly operation: ``body`` on every neuron of ``pop`` in the steps that are
    multiples of the argument ``every``, at the start of the step."""

    pop: str
    label: str
    n: str
    every: str
    states: tuple[StateVar, ...]
    params: tuple[tuple[str, str, bool], ...]     # (local, arg, per_neuron)
    body: tuple[Assign, ...]                      # assignments to state locals
    writes: tuple[tuple[str, str], ...]           # (state local, arg) stored after
    draws: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True)
class Reset:
    """The reset of population ``pop`` (its :class:`NeuronStep`'s ``reset``) for the neurons
    that spiked this step, and the start of their refractory period: after synaptic
    propagation, so that input arriving in the step of a spike is overwritten by the reset
    (Brian2's ``resets`` slot)."""

    pop: str
    spikes: str    # ring argument prefix: this step's spikes of ``pop``


@dataclass(frozen=True)
class PoissonStep:
    """A population that spikes with probability ``rate * dt`` per step (Philox: snngen.draw)."""

    pop: str
    n: str
    rate: str
    per_neuron: bool
    stream: int
    spikes: str | None


@dataclass(frozen=True)
class ArrayStep:
    """A population replaying given spike times (sorted events, a cursor per batch entry)."""

    pop: str
    n: str
    spikes: str | None
    events: str  # argument prefix: <events>_step, <events>_idx, <events>_cursor


@dataclass(frozen=True)
class Trace:
    """An event-driven synaptic variable brought up to date with an exact decay on events."""

    local: str
    arg: str
    decay: sp.Basic   # new value in terms of the old local and ``_elapsed`` (seconds)


@dataclass(frozen=True)
class Deliver:
    """Run synaptic statements for every spike of ``pre`` that arrives this step.

    ``direction`` is ``pre`` (rows of the CSR, spikes of the presynaptic population) or
    ``post`` (the transposed index, spikes of the postsynaptic population). The subgroup
    bounds and index arrays are the arguments ``<proj>__pre_start`` ... ``<proj>__indices``.
    """

    proj: str
    direction: str
    source_ring: str
    delay: str                     # argument: delay in steps
    syn: tuple[tuple[str, str, bool], ...]   # (local, arg, batched) per-synapse variables
    pre_vars: tuple[tuple[str, str], ...]    # (local, state arg) read/written on the pre side
    post_vars: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, str], ...]      # (local, scalar arg)
    traces: tuple[Trace, ...]
    body: tuple[Assign, ...]
    writes: tuple[tuple[str, str], ...] = field(default=())  # (local, kind: syn|pre|post)
    #: (local, last-spike arg, refractory-steps arg) of neuron variables flagged
    #: ``(unless refractory)``: Brian2 writes them only where the neuron is not refractory
    #: (a neuron that spiked this step is), so these stores are guarded
    guards: tuple[tuple[str, str, str], ...] = field(default=())
    #: rand()/randn() of the statements, drawn per synapse and event: (local, kind, stream)
    draws: tuple[tuple[str, str, int], ...] = field(default=())
    #: Brian2's ``lastspike`` (seconds; -1e4 before the first spike) and ``not_refractory``
    #: of a pre- or postsynaptic neuron, read only: (local, kind, last-spike arg,
    #: refractory-steps arg, neuron index local "j" or "post")
    spike_vars: tuple[tuple[str, str, str, str, str], ...] = field(default=())
    #: per-synapse delays (argument, in steps, CSR order): ``delay`` is then the longest,
    #: and the events of synapse ``k`` are due ``delays[k]`` steps after its source spiked
    delays: str | None = None


@dataclass(frozen=True)
class SynapseUpdate:
    """One step of the ``(clock-driven)`` ODEs of projection ``proj``, for every synapse
    (Brian2's synaptic state update, in the ``groups`` slot with the neurons, by name)."""

    proj: str
    syn: tuple[tuple[str, str, bool], ...]   # (local, arg, batched) per-synapse variables
    pre_vars: tuple[tuple[str, str], ...]    # (local, state arg), read only
    post_vars: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, str], ...]      # (local, scalar arg)
    body: tuple[Assign, ...]                 # temporaries
    updates: tuple[tuple[str, str], ...]     # (synaptic local, new-value local)


@dataclass(frozen=True)
class Summed:
    """The ``(summed)`` variables of projection ``proj``: each postsynaptic ``target`` (a
    (batch, neurons) argument) is set to the sum of ``expr`` over the neuron's synapses, for
    the neurons of the projection's target subgroup; before any state update of the step
    (Brian2's summed-variable updaters run just before their target group)."""

    proj: str
    syn: tuple[tuple[str, str, bool], ...]
    pre_vars: tuple[tuple[str, str], ...]
    post_vars: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, str], ...]
    sums: tuple[tuple[str, sp.Basic], ...]   # (target arg, expression of the locals)


@dataclass(frozen=True)
class Accumulate:
    """Per-synapse delays: add ``expr`` into a ring of future input, applied when due."""

    proj: str
    source_ring: str
    target: str        # the post state argument that receives the input
    buffer: str        # the ring of future input: (B, R, n_post)
    syn: tuple[tuple[str, str, bool], ...]
    params: tuple[tuple[str, str], ...]
    pre_vars: tuple[tuple[str, str], ...]
    expr: sp.Basic
    #: (last-spike arg, refractory-steps arg) when the target is flagged
    #: ``(unless refractory)``: input due to a refractory neuron is dropped, as in Brian2
    guard: tuple[str, str] | None = None


@dataclass(frozen=True)
class SpikeRecord:
    pop: str
    ring: str
    out: str


@dataclass(frozen=True)
class StateRecord:
    pop: str
    states: tuple[str, ...]    # state arguments, in recorded order
    out: str                   # argument prefix: <out> (B, K, V, M), <out>_idx


@dataclass(frozen=True)
class RateRecord:
    pop: str
    ring: str
    out: str


@dataclass(frozen=True)
class Program:
    """The fused time loop of a network."""

    name: str
    args: tuple[Arg, ...]
    steps: tuple[object, ...]
    rings: tuple[tuple[str, str], ...]     # (ring prefix, size argument of its population)
    dtype: str = "float32"

    def arg(self, name: str) -> Arg:
        for a in self.args:
            if a.name == name:
                return a
        raise KeyError(name)

    def __str__(self) -> str:
        lines = [f"Program {self.name} ({self.dtype}), {len(self.args)} arguments"]
        for step in self.steps:
            kind = type(step).__name__
            lines.append(f"  {kind} {getattr(step, 'pop', getattr(step, 'proj', ''))}")
            for a, b, stream in getattr(step, "noise", ()):
                lines.append(f"      {a}{', ' + b if b else ''} = normal2(stream {stream})")
            for a in getattr(step, "body", ()):
                lines.append(f"      {a.target} = {a.expr}")
            for s, n in getattr(step, "updates", ()):
                lines.append(f"      {s} <- {n}")
            for target, expr in getattr(step, "sums", ()):
                lines.append(f"      {target}[post] = sum over synapses of {expr}")
            if getattr(step, "condition", None) is not None:
                lines.append(f"      spike if {step.condition}")
            for a in getattr(step, "reset", ()):
                lines.append(f"      on spike: {a.target} = {a.expr}")
        return "\n".join(lines)
