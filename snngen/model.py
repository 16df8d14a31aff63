"""Models: what a user declares, checked and resolved, before any discretisation.

A :class:`NeuronModel` holds ODEs, subexpressions, parameters, threshold, reset and
refractoriness; a :class:`SynapseModel` holds per-synapse variables, event-driven traces and the
``on_pre``/``on_post`` statements. Both are immutable and printable; both can be reused by many
populations or projections with different parameter values.

>>> lif = NeuronModel("dv/dt = (El - v) / tau : volt", threshold="v > Vt", reset="v = El")
>>> lif.state_names, lif.parameter_names
(('v',), ('El', 'Vt', 'tau'))
>>> lif.rhs["v"]
(El - v)/tau
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import sympy as sp

from . import stochastic
from . import units as u
from .errors import (
    EquationError,
    IntegrationError,
    MissingParameterError,
    UnitError,
    UnknownNameError,
    did_you_mean,
    shown,
)
from .exprcheck import MAX_DEPTH, depth, is_boolean
from .parse import (
    SPECIAL_NAMES,
    EquationLine,
    Statement,
    parse_equations,
    parse_refractory,
    parse_statements,
    symbol,
)
from .symbolic import draws, renumber

SECOND = u.parse_unit("second")[1]
#: Brian2's per-neuron variables of a model with a refractory period: the time of the last
#: spike (seconds; -1e4 before the first) and whether the neuron is not refractory (0 or 1)
SPIKE_VARIABLES = ("lastspike", "not_refractory")


def _unit_symbols(expr: sp.Basic) -> dict[sp.Symbol, sp.Float]:
    """Map every unit name used in ``expr`` (ms, mV, ...) to its SI scale."""
    return {s: sp.Float(u.unit_symbol(s.name)[0]) for s in expr.free_symbols
            if u.is_unit_name(s.name)}


def strip_units(expr: sp.Basic) -> sp.Basic:
    """Replace unit names by their SI scale factors (``10*ms`` -> ``0.01``)."""
    return expr.xreplace(_unit_symbols(expr))


def _unit_dims(expr: sp.Basic) -> dict[sp.Symbol, u.Dimension]:
    return {s: u.unit_symbol(s.name)[1] for s in expr.free_symbols if u.is_unit_name(s.name)}


def _declared_dim(unit: str | None, line: str, where: str | None = None) -> u.Dimension | None:
    if unit is None:
        return None
    try:
        return u.parse_unit(unit)[1]
    except UnitError as err:
        first = str(err).splitlines()[0]
        if where and first.startswith(f"{where}: "):
            first = first[len(where) + 2:]
        raise UnitError(first, line, line.rfind(unit), len(unit), where) from None


def _too_deep(expr: sp.Basic, depths: Mapping, line: str, where: str | None) -> None:
    """Refuse ``expr`` if substituting subexpressions (``depths``) nests it too deeply."""
    d = depth(expr, depths)
    if d > MAX_DEPTH:
        used = sorted(s.name for s in expr.free_symbols if s in depths)
        col = max((line.find(used[0]) if used else 0), 0)
        raise EquationError(f"with its subexpressions substituted ({', '.join(used)}) this "
                            f"expression is nested {d} levels deep, more than the {MAX_DEPTH} "
                            "that snngen compiles; flatten the subexpressions",
                            line, col, len(used[0]) if used else 1, where)


@dataclass(frozen=True)
class _Equations:
    """Shared machinery of neuron and synapse models: ODEs, subexpressions, parameters.

    Checked when made, so that a mistake is reported where the model is written: every unit
    is a known unit, subexpressions do not refer to each other in a cycle, and none nests too
    deeply once substituted.
    """

    lines: tuple[EquationLine, ...]
    where: str | None = None

    def __post_init__(self):
        for e in self.lines:
            _declared_dim(e.unit, e.line, self.where)
        pending = {symbol(e.name): e for e in self.lines if e.kind == "subexpression"}
        resolved: dict[sp.Symbol, sp.Basic] = {}
        constant_dt: dict[sp.Symbol, sp.Basic] = {}
        depths: dict[sp.Symbol, int] = {}
        while pending:  # in dependency order, without recursion: chains may be long
            ready = [s for s, e in pending.items() if not e.expr.free_symbols & pending.keys()]
            if not ready:
                first = next(iter(pending.values()))
                raise EquationError("subexpressions refer to each other in a cycle ("
                                    + ", ".join(e.name for e in pending.values())
                                    + "); define each from the ones before it",
                                    first.line, first.line.find(first.name), len(first.name),
                                    self.where)
            for s in ready:
                e = pending.pop(s)
                _too_deep(e.expr, depths, e.line, self.where)
                if "constant over dt" in e.flags:  # evaluated once per step, kept a name
                    constant_dt[s] = e.expr.xreplace(resolved)
                    resolved[s], depths[s] = s, 1
                    continue
                resolved[s] = e.expr.xreplace(resolved)
                depths[s] = depth(resolved[s])
        for e in self.lines:
            if e.kind == "ode":
                _too_deep(e.expr, depths, e.line, self.where)
        object.__setattr__(self, "_resolved", resolved)
        object.__setattr__(self, "_depths", depths)
        object.__setattr__(self, "_constant_dt", constant_dt)

    @property
    def constant_over_dt(self) -> dict[str, sp.Basic]:
        """``(constant over dt)`` subexpressions, in an order that defines each before its
        use: evaluated once per step (before the update; Brian2's rule for subexpressions
        that draw random numbers), units resolved."""
        out, offset = {}, 0
        for s, e in self._constant_dt.items():  # each line's rand() call sites numbered on
            out[s.name] = strip_units(renumber(e, offset))
            offset += len(draws(e))
        return out

    @property
    def odes(self) -> dict[str, EquationLine]:
        return {e.name: e for e in self.lines if e.kind == "ode"}

    @property
    def subexpressions(self) -> dict[str, EquationLine]:
        return {e.name: e for e in self.lines if e.kind == "subexpression"}

    @property
    def declared(self) -> dict[str, EquationLine]:
        return {e.name: e for e in self.lines if e.kind == "parameter"}

    def check_depth(self, expr: sp.Basic, line: str, where: str | None = None) -> None:
        """Raise EquationError if ``expr`` nests too deeply once subexpressions are in."""
        _too_deep(expr, self._depths, line, where or self.where)

    def resolve(self, expr: sp.Basic) -> sp.Basic:
        """Substitute subexpressions (recursively) and unit scales into ``expr``."""
        return strip_units(expr.xreplace(self._resolved))


#: The integration methods of :mod:`snngen.integrate` (``"auto"`` tries them in turn).
METHODS = ("exact", "exponential_euler", "euler", "rk2", "rk4", "heun", "milstein")


def check_method(method, where: str) -> str:
    """``method`` if it names an integration method or ``"auto"``, else IntegrationError.

    >>> check_method("rk4", "model 'm'")
    'rk4'
    >>> check_method("rk5", "model 'm'")
    Traceback (most recent call last):
    ...
    snngen.errors.IntegrationError: model 'm': unknown integration method 'rk5'; choose one of ...
    """
    if not isinstance(method, str) or method != "auto" and method not in METHODS:
        raise IntegrationError(f"{where}: unknown integration method {shown(method)}; choose "
                               f"one of {', '.join(METHODS)} or 'auto'")
    return method


def _free_names(exprs) -> set[str]:
    names: set[str] = set()
    for e in exprs:
        if e is not None:
            names |= {s.name for s in e.free_symbols}
    return names


class NeuronModel:
    """A neuron model written as equations.

    Parameters
    ----------
    equations : str
        Lines ``dx/dt = expr : unit (flags)``, ``name = expr : unit`` (subexpression) and
        ``name : unit (shared)`` (declared parameter). Units are optional.
    threshold : str, optional
        Spike condition, e.g. ``"v > Vt"``.
    reset : str, optional
        Statements run on each spike, e.g. ``"v = Vr; w += b"``.
    refractory : str or float, optional
        Refractory duration: a quantity (``"5*ms"``), seconds (0.005) or an expression of
        parameters; or a condition (``"v > -40*mV"``): refractory after a spike until the
        condition is false. Variables flagged ``(unless refractory)`` are clamped meanwhile
        and the threshold is not checked.
    method : str
        ``"auto"`` (exact if linear with constant coefficients, else exponential Euler if
        conditionally linear, else Euler), or one of ``exact``, ``exponential_euler``,
        ``euler``, ``rk2``, ``rk4``. With white noise (``xi``: :mod:`snngen.stochastic`),
        ``euler`` (additive noise), ``heun`` or ``milstein``; ``auto`` picks as Brian2 does.
    name : str, optional
    """

    def __init__(self, equations: str, threshold: str | None = None, reset: str | None = None,
                 refractory: str | float | None = None, method: str = "auto",
                 name: str | None = None):
        self.name = name or "neuron"
        self.text = equations
        where = f"model '{self.name}'"
        self.eqs = _Equations(parse_equations(equations, where=where), where)
        if not self.eqs.odes and not self.eqs.declared:
            raise EquationError("a neuron model needs at least one equation", equations, 0, 1,
                                f"model '{self.name}'")
        self.method = check_method(method, where)
        self.threshold_text, self.reset_text = threshold, reset
        self.threshold = None
        self.threshold_names: dict[str, int] = {}
        if threshold is not None:
            from .parse import parse_condition
            self.threshold, self.threshold_names = parse_condition(
                threshold, where=f"threshold of '{self.name}'")
        self.reset: tuple[Statement, ...] = ()
        if reset is not None:
            self.reset = parse_statements(reset, where=f"reset of '{self.name}'")
            if threshold is None:
                raise EquationError("a reset needs a threshold", reset, 0, len(reset),
                                    f"model '{self.name}'")
        self.refractory_text = refractory
        self.refractory, self.refractory_names, text = None, {}, ""
        if refractory is not None:
            self.refractory, self.refractory_names, text = parse_refractory(
                refractory, f"refractory of '{self.name}'")
            if threshold is None:
                raise EquationError("refractoriness needs a threshold", text, 0, 1,
                                    f"model '{self.name}'")
        self._check_names()
        self._check_spike_variables()
        stochastic.check(self)
        if self.threshold is not None:
            self.eqs.check_depth(self.threshold, threshold, f"threshold of '{self.name}'")
        for stmt in self.reset:
            self.eqs.check_depth(stmt.expr, stmt.line, f"reset of '{self.name}'")
        if self.refractory is not None:
            self.eqs.check_depth(self.refractory, text, f"refractory of '{self.name}'")

    @property
    def refractory_is_condition(self) -> bool:
        """True if ``refractory`` is a condition (``"v > -40*mV"``): after a spike the neuron
        stays refractory until the condition is false in some step (Brian2's rule:
        ``not_refractory = not_refractory or not (condition)`` before each state update)."""
        return is_boolean(self.refractory)

    # -- names -----------------------------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(self.eqs.odes)

    def state_dims(self) -> dict[str, u.Dimension | None]:
        """The declared dimension of every state variable (None where no unit is given)."""
        return {n: _declared_dim(e.unit, e.line) for n, e in self.eqs.odes.items()}

    def variable_dims(self) -> dict[str, u.Dimension | None]:
        """The declared dimension of every state variable and declared parameter."""
        return {n: _declared_dim(e.unit, e.line) for n, e in
                list(self.eqs.odes.items()) + list(self.eqs.declared.items())}

    @property
    def summable(self) -> frozenset[str]:
        """Declared per-neuron parameters: what a synapse's ``(summed)`` variable can set."""
        return frozenset(n for n, e in self.eqs.declared.items() if "shared" not in e.flags)

    @property
    def clamped(self) -> frozenset[str]:
        """State variables frozen while refractory."""
        return frozenset(n for n, e in self.eqs.odes.items() if "unless refractory" in e.flags)

    @property
    def rhs(self) -> dict[str, sp.Expr]:
        """Right-hand sides with subexpressions and units resolved."""
        return {n: self.eqs.resolve(e.expr) for n, e in self.eqs.odes.items()}

    def _all_exprs(self):
        yield from (e.expr for e in self.eqs.lines if e.expr is not None)
        yield self.threshold
        yield from (s.expr for s in self.reset)
        yield self.refractory

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every name that needs a value: declared parameters and free names."""
        defined = set(self.eqs.odes) | set(self.eqs.subexpressions) | SPECIAL_NAMES
        # names as written, too: '(0*mV) / taum' folds to 0 but taum is still the model's
        written = [e.names for e in self.eqs.lines] + [s.names for s in self.reset] + [
            self.threshold_names.items(), self.refractory_names.items()]
        free = {n for n in _free_names(self._all_exprs()) | {n for w in written for n, _ in w}
                if not u.is_unit_name(n)}
        noise = {n for n in free if stochastic.is_noise(n)}
        spike = set(SPIKE_VARIABLES) if self.refractory is not None else set()
        return tuple(sorted((free - defined - noise - spike) | set(self.eqs.declared)))

    @property
    def spike_variables(self) -> tuple[str, ...]:
        """The :data:`SPIKE_VARIABLES` the model reads (it has a refractory period)."""
        if self.refractory is None:
            return ()
        used = _free_names(self._all_exprs())
        return tuple(n for n in SPIKE_VARIABLES if n in used)

    @property
    def noise_names(self) -> tuple[str, ...]:
        """White-noise names (``xi``, ``xi_<suffix>``) in the differential equations."""
        return tuple(s.name for s in stochastic.noise_of(
            {symbol(n): e for n, e in self.rhs.items()}))

    @property
    def shared_parameters(self) -> frozenset[str]:
        return frozenset(n for n, e in self.eqs.declared.items() if "shared" in e.flags)

    def _check_spike_variables(self):
        """``lastspike``/``not_refractory``: reserved with a refractory period, read only,
        and meaningless without one (Brian2 has them only then)."""
        where = f"model '{self.name}'"
        for e in self.eqs.lines:
            if e.name in SPIKE_VARIABLES:
                raise EquationError(f"'{e.name}' is Brian2's variable of neurons with a "
                                    "refractory period; give this one another name", e.line,
                                    e.line.find(e.name), len(e.name), where)
        used = _free_names(self._all_exprs())
        for n in SPIKE_VARIABLES:
            if n in used and self.refractory is None:
                loc = self.locate(n)
                raise EquationError(f"'{n}' needs a refractory period (refractory=..., e.g. "
                                    "refractory=0), as in Brian2", *(loc or (None, None)),
                                    len(n), where)

    def _check_names(self):
        for stmt in self.reset:
            if stmt.target not in self.eqs.odes and stmt.target not in self.eqs.declared:
                raise UnknownNameError(
                    f"reset assigns to '{stmt.target}', which is not a state variable."
                    + did_you_mean(stmt.target, self.state_names), stmt.line, stmt.col,
                    len(stmt.target), f"reset of '{self.name}'")

    def locate(self, name: str) -> tuple[str, int] | None:
        """Return (line, column) of the first use of ``name`` in the model, for error carets."""
        for e in self.eqs.lines:
            col = e.column_of(name)
            if col is not None:
                return e.line, col
        if name in self.threshold_names:
            return self.threshold_text, self.threshold_names[name]
        for s in self.reset:
            if name in {x.name for x in s.expr.free_symbols}:
                return s.line, max(s.line.find(name), 0)
        return None

    def check_parameters(self, given: Mapping[str, object], where: str) -> None:
        """Raise a clear error for every missing (or misspelt) parameter."""
        missing = [n for n in self.parameter_names if n not in given]
        if not missing:
            return
        # a misspelling shows up as a given name the model does not use
        known = set(given) - set(self.parameter_names)
        for name in missing:
            hint = did_you_mean(name, known)
            loc = self.locate(name)
            if hint and loc:
                raise UnknownNameError(f"unknown name '{name}' in {where}.{hint}", loc[0], loc[1],
                                       len(name), f"model '{self.name}'")
        raise MissingParameterError(
            f"{where}: no value for parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} of model '{self.name}'. Give "
            f"{'them' if len(missing) > 1 else 'it'} in params={{...}}, e.g. "
            f"params={{'{missing[0]}': ...}}.")

    # -- units -----------------------------------------------------------------------------
    def check_units(self, param_dims: Mapping[str, u.Dimension | None]) -> None:
        """Check dimensional consistency given the dimensions of parameter values."""
        dims = self._dims(param_dims)
        self._check_ode_units(dims)
        self.check_statements(self.reset, param_dims, "reset", dims)
        self._check_refractory_units(dims)

    def check_statements(self, stmts, param_dims, where: str, dims=None) -> None:
        """Check the units of statements on this model's variables (a reset, a
        run_regularly operation): each side of ``=``, ``+=``, ``-=`` has the target's unit."""
        dims = self._dims(param_dims) if dims is None else dims
        for s in stmts:
            d = u.dimension_of(s.expr, {**dims, **_unit_dims(s.expr)}, line=s.line, where=where)
            if s.op in ("=", "+=", "-="):
                u.check_equal(dims.get(symbol(s.target)), d, s.target, str(s.expr), line=s.line)

    def _dims(self, param_dims) -> dict:
        """The dimension of every name of the model (subexpressions checked on the way)."""
        dims: dict[sp.Symbol, u.Dimension | None] = {}
        for n, e in self.eqs.odes.items():
            dims[symbol(n)] = _declared_dim(e.unit, e.line)
        for n, e in self.eqs.declared.items():
            dims[symbol(n)] = _declared_dim(e.unit, e.line)
        for n, d in param_dims.items():
            if dims.get(symbol(n)) is None:
                dims[symbol(n)] = d
        dims[symbol("t")] = dims[symbol("dt")] = SECOND
        dims[symbol("i")] = dims[symbol("N")] = u.DIMENSIONLESS
        for n in self.noise_names:
            dims[symbol(n)] = SECOND ** Fraction(-1, 2)
        for n in self.spike_variables:
            dims[symbol(n)] = SECOND if n == "lastspike" else u.DIMENSIONLESS
        for n, e in self.eqs.subexpressions.items():
            d = u.dimension_of(e.expr, {**dims, **_unit_dims(e.expr)}, where=f"'{n}'", line=e.line)
            if e.unit is not None:
                u.check_equal(_declared_dim(e.unit, e.line), d, n, str(e.expr), line=e.line)
            dims[symbol(n)] = d if d is not None else _declared_dim(e.unit, e.line)
        return dims

    def _check_ode_units(self, dims) -> None:
        for n, e in self.eqs.odes.items():
            d = u.dimension_of(e.expr, {**dims, **_unit_dims(e.expr)}, where=f"d{n}/dt",
                               line=e.line)
            x = dims[symbol(n)]
            if x is not None:
                u.check_equal(x / SECOND, d, f"d{n}/dt", str(e.expr), line=e.line)
        if self.threshold is not None:
            u.dimension_of(self.threshold, {**dims, **_unit_dims(self.threshold)},
                           line=self.threshold_text, where="threshold")

    def _check_refractory_units(self, dims) -> None:
        if self.refractory is not None:
            d = u.dimension_of(self.refractory, {**dims, **_unit_dims(self.refractory)},
                               line=str(self.refractory_text), where="refractory")
            if not self.refractory_is_condition:
                u.check_equal(SECOND, d, "refractory", str(self.refractory),
                              line=str(self.refractory_text))

    # -- identity --------------------------------------------------------------------------
    def canonical(self) -> str:
        """Structure-only text used in cache keys (no parameter values)."""
        parts = [f"{e.kind} {e.name} = {sp.srepr(e.expr) if e.expr is not None else ''} "
                 f": {e.unit} {e.flags}" for e in self.eqs.lines]
        parts += [f"threshold {sp.srepr(self.threshold)}",
                  "reset " + ";".join(f"{s.target}{s.op}{sp.srepr(s.expr)}" for s in self.reset),
                  f"refractory {sp.srepr(self.refractory)}", f"method {self.method}"]
        return "\n".join(parts)

    def key(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        lines = [f"NeuronModel '{self.name}'"]
        lines += ["  " + e.line.strip() for e in self.eqs.lines]
        if self.threshold is not None:
            lines.append(f"  threshold: {self.threshold_text}")
        if self.reset:
            lines.append(f"  reset: {self.reset_text}")
        if self.refractory is not None:
            lines.append(f"  refractory: {self.refractory_text}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Quantities:
    """Parameter values resolved to SI floats (or arrays), with their dimensions if known."""

    values: dict = field(default_factory=dict)
    dims: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Mapping[str, object] | None) -> Quantities:
        values, dims = {}, {}
        for k, v in (params or {}).items():
            values[k], dims[k] = u.parse_quantity(v)
        return cls(values, dims)


def is_quantity(text: str) -> bool:
    """True if ``text`` reads as a quantity ("20*ms", "0.5"), False for an expression ("i*ms")."""
    try:
        Quantities.parse({"v": text})
    except EquationError:
        return False
    return True


# Synapse models live in snngen.synapse; re-exported here, where they were first defined.
from .synapse import EventTrace, SummedVariable, SynapseModel, on_pre_model  # noqa: E402, F401
