"""Synapse models: per-synapse variables, event-driven and clock-driven equations, summed
variables and the ``on_pre``/``on_post`` statements (the neuron side is
:mod:`snngen.model`, whose equation machinery this module shares)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from . import stochastic
from . import units as u
from .errors import EquationError, UnitError
from .model import _declared_dim, _Equations, _unit_dims, check_method
from .parse import parse_equations, parse_statements, symbol


@dataclass(frozen=True)
class EventTrace:
    """An ``(event-driven)`` synaptic ODE: solved exactly between events."""

    name: str
    rhs: sp.Expr
    line: str


@dataclass(frozen=True)
class SummedVariable:
    """``x_post = expr : unit (summed)``: every step, postsynaptic parameter ``target`` of
    each neuron is set to the sum of ``expr`` over its synapses of the projection."""

    target: str
    expr: sp.Expr
    line: str


class SynapseModel:
    """A synapse model: per-synapse variables, event-driven traces and event statements.

    Names in statements resolve to (in order) synaptic variables, then postsynaptic variables;
    ``x_pre`` and ``x_post`` name pre- and postsynaptic variables explicitly.

    >>> stdp = SynapseModel('''
    ...     w : 1
    ...     dApre/dt = -Apre / taupre : 1 (event-driven)
    ... ''', on_pre="ge += w; Apre += dApre")
    >>> stdp.variables, [t.name for t in stdp.traces]
    (('w', 'Apre'), ['Apre'])

    ``(clock-driven)`` ODEs are integrated every step for every synapse (``method``:
    ``auto``, which tries ``exponential_euler`` then ``euler``, or any explicit method but
    ``exact``), and a ``(summed)`` subexpression ``x_post = expr`` sets the postsynaptic
    parameter ``x`` to the sum of ``expr`` over each neuron's synapses, every step, before
    the neurons are updated (Brian2's NMDA-like synapses and gap junctions):

    >>> nmda = SynapseModel('''
    ...     dg/dt = -g / tau_d + alpha * x * (1 - g) : 1 (clock-driven)
    ...     dx/dt = -x / tau_r : 1 (clock-driven)
    ...     I_nmda_post = w * g * (E - v_post) : 1 (summed)
    ...     w : 1
    ... ''', on_pre="x += 1")
    >>> nmda.clock_driven, [(s.target, str(s.expr)) for s in nmda.summed]
    (('g', 'x'), [('I_nmda', 'g*w*(E - v_post)')])
    """

    def __init__(self, equations: str = "", on_pre: str | None = None,
                 on_post: str | None = None, name: str | None = None, method: str = "auto"):
        self.name = name or "synapse"
        self.text = equations
        where = f"synapse '{self.name}'"
        self.eqs = _Equations(parse_equations(equations, where=where), where)
        for e in self.eqs.lines:
            if "constant over dt" in e.flags:
                raise EquationError("(constant over dt) subexpressions in synapse models are "
                                    "not built yet; put them into the neuron model", e.line,
                                    0, len(e.line), where)
        stochastic.check_draws(self.eqs, where)
        self.method = check_method(method, where)
        for n, e in self.eqs.odes.items():
            kinds = {"event-driven", "clock-driven"} & set(e.flags)
            if len(kinds) != 1:
                raise EquationError(
                    f"synaptic ODE for '{n}' must be marked either (event-driven): updated at "
                    "events only, solved exactly in between, or (clock-driven): integrated "
                    "every step for every synapse", e.line, 0, len(e.line), where)
        for e in self.eqs.lines:
            noise = sorted(x.name for x in getattr(e.expr, "free_symbols", ())
                           if stochastic.is_noise(x.name))
            if noise:
                raise EquationError(f"white noise '{noise[0]}' in a synapse model is not "
                                    "built yet; put the noise into the neuron model", e.line,
                                    max(e.line.find(noise[0]), 0), len(noise[0]), where)
            if "summed" in e.flags and (e.kind != "subexpression"
                                        or not e.name.endswith("_post")):
                raise EquationError(
                    "(summed) marks a subexpression named after a postsynaptic parameter, "
                    f"such as 'I_syn_post = w * g : amp (summed)'; '{e.name}' is "
                    + ("not a subexpression" if e.kind != "subexpression"
                       else "not named <variable>_post"), e.line, 0, len(e.line), where)
        if on_pre is None and on_post is None and not self.summed:
            raise EquationError("a synapse model needs on_pre and/or on_post statements "
                                "(or a (summed) variable)",
                                equations or "''", 0, 1, f"synapse '{self.name}'")
        self.on_pre_text, self.on_post_text = on_pre, on_post
        self.on_pre = parse_statements(on_pre, f"on_pre of '{self.name}'") if on_pre else ()
        self.on_post = parse_statements(on_post, f"on_post of '{self.name}'") if on_post else ()
        for label, stmts in (("on_pre", self.on_pre), ("on_post", self.on_post)):
            for stmt in stmts:
                self.eqs.check_depth(stmt.expr, stmt.line, f"{label} of '{self.name}'")

    @property
    def variables(self) -> tuple[str, ...]:
        """Per-synapse state: declared per-synapse parameters and event-driven traces."""
        return tuple(n for n, e in self.eqs.declared.items() if "shared" not in e.flags) \
            + tuple(self.eqs.odes)

    @property
    def traces(self) -> tuple[EventTrace, ...]:
        """The ``(event-driven)`` ODEs."""
        return tuple(EventTrace(n, self.eqs.resolve(e.expr), e.line)
                     for n, e in self.eqs.odes.items() if "event-driven" in e.flags)

    @property
    def clock_driven(self) -> tuple[str, ...]:
        """Variables of the ``(clock-driven)`` ODEs, integrated every step."""
        return tuple(n for n, e in self.eqs.odes.items() if "clock-driven" in e.flags)

    @property
    def rhs(self) -> dict[str, sp.Expr]:
        """Right-hand sides of the clock-driven ODEs, subexpressions and units resolved."""
        return {n: self.eqs.resolve(self.eqs.odes[n].expr) for n in self.clock_driven}

    @property
    def summed(self) -> tuple[SummedVariable, ...]:
        return tuple(SummedVariable(e.name[:-5], self.eqs.resolve(e.expr), e.line)
                     for e in self.eqs.lines if "summed" in e.flags)

    def canonical(self) -> str:
        parts = [f"{e.kind} {e.name} = {sp.srepr(e.expr) if e.expr is not None else ''} "
                 f": {e.unit} {e.flags}" for e in self.eqs.lines]
        for label, stmts in (("pre", self.on_pre), ("post", self.on_post)):
            parts.append(label + " " + ";".join(f"{s.target}{s.op}{sp.srepr(s.expr)}"
                                                 for s in stmts))
        parts.append(f"method {self.method}")
        return "\n".join(parts)

    def check_units(self, pre_dims: Mapping[str, u.Dimension | None],
                    post_dims: Mapping[str, u.Dimension | None],
                    param_dims: Mapping[str, u.Dimension | None], where: str) -> None:
        """Check the dimensions of event-driven equations and of ``on_pre``/``on_post``
        statements, given the state dimensions of the pre- and postsynaptic neurons (names
        without suffix; ``None`` where unknown) and those of the projection's parameters.
        Names resolve as in the kernels: synaptic variables, ``x_pre``, ``x_post`` and plain
        postsynaptic names. A synaptic variable declared dimensionless (``w : 1``, as the
        shortcut ``"v += w"`` declares it) takes the unit of whatever it meets.

        >>> stdp = SynapseModel("w : volt", on_pre="v_post += w")
        >>> stdp.check_units({}, {"v": u.parse_unit("volt")[1]}, {}, "projection 'p'")
        >>> SynapseModel("w : second", on_pre="v += w").check_units(
        ...     {}, {"v": u.parse_unit("volt")[1]}, {}, "projection 'p'")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        snngen.errors.UnitError: projection 'p', on_pre: 'v' has dimension volt but 'w' has ...
        """
        second = u.parse_unit("second")[1]
        dims: dict[sp.Symbol, u.Dimension | None] = {}
        for n, d in post_dims.items():
            dims[symbol(n)] = dims[symbol(n + "_post")] = d
        for n, d in pre_dims.items():
            dims[symbol(n + "_pre")] = d
        for n, d in param_dims.items():
            dims[symbol(n)] = d
        for n, e in list(self.eqs.declared.items()) + list(self.eqs.odes.items()):
            d = _declared_dim(e.unit, e.line, where)
            # a synaptic variable declared dimensionless takes the unit of what it meets
            # (the shortcut "v += w" declares w : 1 for any target): a wildcard here
            dims[symbol(n)] = None if d == u.DIMENSIONLESS else d
        dims[symbol("t")] = dims[symbol("dt")] = second
        for n, e in self.eqs.subexpressions.items():
            d = u.dimension_of(e.expr, {**dims, **_unit_dims(e.expr)}, where=where, line=e.line)
            if e.unit is not None:
                u.check_equal(_declared_dim(e.unit, e.line), d, n, str(e.expr), where, e.line)
            dims[symbol(n)] = d if d is not None else _declared_dim(e.unit, e.line)
            if "summed" in e.flags:  # the sum has the unit of its postsynaptic target
                u.check_equal(post_dims.get(n[:-5]), dims[symbol(n)], n, str(e.expr), where,
                              e.line)
        for n, e in self.eqs.odes.items():
            d = u.dimension_of(e.expr, {**dims, **_unit_dims(e.expr)}, where=where, line=e.line)
            if dims[symbol(n)] is not None:
                u.check_equal(dims[symbol(n)] / second, d, f"d{n}/dt", str(e.expr), where,
                              e.line)
        for label, stmts in (("on_pre", self.on_pre), ("on_post", self.on_post)):
            for s in stmts:
                d = u.dimension_of(s.expr, {**dims, **_unit_dims(s.expr)},
                                   where=f"{where}, {label}", line=s.line)
                if s.op in ("=", "+=", "-="):
                    u.check_equal(dims.get(symbol(s.target)), d, s.target, str(s.expr),
                                  f"{where}, {label}", s.line)
                elif d is not None and d != u.DIMENSIONLESS:
                    raise UnitError(f"{where}, {label}: '{s.target} {s.op} ...' needs a "
                                    f"dimensionless factor, but '{s.expr}' has dimension {d}",
                                    s.line, s.col, len(s.line) - s.col)

    def __repr__(self) -> str:
        lines = [f"SynapseModel '{self.name}'"] + ["  " + e.line.strip() for e in self.eqs.lines]
        if self.on_pre:
            lines.append(f"  on_pre: {self.on_pre_text}")
        if self.on_post:
            lines.append(f"  on_post: {self.on_post_text}")
        return "\n".join(lines)


def on_pre_model(statement: str) -> SynapseModel:
    """A weight-only synapse from a shortcut such as ``"ge += w"``."""
    return SynapseModel("w : 1", on_pre=statement, name="static")
