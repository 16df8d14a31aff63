"""Parameter and initial values checked against the model they are given to.

The checks are derived from the model's equations, not from names: a parameter that divides
(in an ODE, a subexpression, the threshold, the reset or the refractory expression) must not
be zero, a time that divides must be positive, and a negative divisor that turns a decay into
an exponential growth is refused. Initial values must have their state's unit. The readers of
plain values (durations, counts, seeds) are in :mod:`snngen.runtime.validate`, which
re-exports the public names of this module.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
import sympy as sp

from .. import units as u
from ..errors import InvalidValueError, UnitError
from .validate import SECOND, _unit_name, check_finite, per_neuron


def _parameter_names(model, given) -> set[str]:
    if hasattr(model, "parameter_names"):
        return set(model.parameter_names)
    return set(given) - set(model.variables)  # a SynapseModel: its params are what is given


def _sources(model) -> list[tuple]:
    """(expression, text naming it) for every expression of a neuron or synapse model."""
    out = [(e.expr, e.line) for e in model.eqs.lines if e.expr is not None]
    if hasattr(model, "on_pre"):  # a SynapseModel
        out += [(s.expr, f"on_pre {s.line}") for s in model.on_pre]
        return out + [(s.expr, f"on_post {s.line}") for s in model.on_post]
    if model.threshold is not None:
        out.append((model.threshold, f"threshold {model.threshold_text}"))
    out += [(s.expr, f"reset {s.line}") for s in model.reset]
    if model.refractory is not None:
        out.append((model.refractory, f"refractory {model.refractory_text}"))
    return out


def divisors(model, given=()) -> dict[str, str]:
    """Parameters of ``model`` (a NeuronModel, or a SynapseModel with parameter names
    ``given``) that divide somewhere (a factor of a denominator), each with the text it
    divides in: a zero value would divide by zero."""
    params = _parameter_names(model, given)
    out: dict[str, str] = {}
    for expr, text in _sources(model):
        for node in sp.preorder_traversal(expr):
            if isinstance(node, sp.Pow) and node.exp.is_negative:
                for factor in sp.Mul.make_args(node.base):
                    base = factor.base if isinstance(factor, sp.Pow) else factor
                    if isinstance(base, sp.Symbol) and base.name in params:
                        out.setdefault(base.name, text.strip())
    return out


def _declared_dims(model) -> dict:
    dims = {}
    for name, e in model.eqs.declared.items():
        if e.unit is not None:
            dims[name] = u.parse_unit(e.unit)[1] if e.unit.strip() != "1" else u.DIMENSIONLESS
    return dims


def _at(arr: np.ndarray, mask: np.ndarray) -> str:
    if np.ndim(mask) == 0:
        return ""
    return f" for neuron {int(np.flatnonzero(mask)[0])}"


def _evaluate(expr, values: Mapping[str, object]):
    from ..model import strip_units
    expr = strip_units(expr)
    names = sorted(s.name for s in expr.free_symbols)
    if any(n not in values for n in names):
        return None
    by_name = {s.name: s for s in expr.free_symbols}
    fn = sp.lambdify([by_name[n] for n in names], expr, modules="numpy")
    with np.errstate(all="ignore"):
        return np.asarray(fn(*(np.asarray(values[n], np.float64) for n in names)), np.float64)


def check_parameter_values(model, values: Mapping[str, object], where: str,
                           dims: Mapping[str, object] | None = None) -> None:
    """Refuse parameter values that make ``model`` compute nonsense, before any code runs.

    Parameters
    ----------
    model : NeuronModel or SynapseModel
        The model the values are for (for a SynapseModel: its event-driven traces and
        on_pre/on_post statements).
    values : mapping of str to float or numpy.ndarray
        Parameter name -> value in SI units: a scalar or one value per neuron (1-D array).
        Names the model does not use are ignored; missing names skip the checks that need them.
    where : str
        Prefix of error messages, e.g. ``"population 'P'"``.
    dims : mapping of str to Dimension or None, optional
        Dimensions of the given values (from quantity strings), when known.

    Raises
    ------
    InvalidValueError
        - a NaN or infinite value (the neuron index is named for arrays);
        - zero for a parameter the model divides by (in an ODE, subexpression, threshold, reset
          or refractory expression);
        - a negative value for a time (declared ``: second`` or given as a time quantity) that
          the model divides by;
        - a negative divisor that makes a state's linear self-coefficient ``d(dx/dt)/dx``
          positive where a positive value would make it negative (a "time constant" turned
          into exponential growth; write ``dv/dt = v/tau`` with ``tau > 0`` to mean growth);
        - a negative refractory period.

    Examples
    --------
    >>> import snngen as sg
    >>> lif = sg.NeuronModel("dv/dt = (El - v) / taum : 1", threshold="v > 1", reset="v = 0")
    >>> check_parameter_values(lif, {"El": 1.5, "taum": 0.02}, "population 'P'")
    >>> check_parameter_values(lif, {"El": 1.5, "taum": -0.02}, "population 'P'")
    Traceback (most recent call last):
    snngen.errors.InvalidValueError: population 'P': parameter 'taum' is -0.02, which makes v
    grow exponentially (d(dv/dt)/dv = 50 > 0) where a positive value makes it decay; ...
    """
    dims = dict(dims or {})
    names = _parameter_names(model, values)
    used = {k: v for k, v in values.items() if k in names}
    for name, value in used.items():
        check_finite(value, f"{where}: parameter '{name}'")
    divs = divisors(model, values)
    declared = _declared_dims(model)
    for name, text in divs.items():
        if name not in used:
            continue
        arr = np.asarray(used[name], np.float64)
        zero = arr == 0
        if np.any(zero):
            raise InvalidValueError(f"{where}: parameter '{name}' is 0{_at(arr, zero)}, but the "
                                    f"model divides by it ({text}); give a non-zero value")
        dim = declared.get(name) or dims.get(name)
        if dim == SECOND and np.any(arr < 0):
            neg = arr < 0
            raise InvalidValueError(f"{where}: parameter '{name}' is a time the model divides "
                                    f"by ({text}) and must be > 0, got "
                                    f"{np.asarray(arr)[neg].flat[0]:g} s{_at(arr, neg)}")
    _check_growth(model, used, divs, where)
    if getattr(model, "refractory", None) is not None and not model.refractory_is_condition:
        period = _evaluate(model.refractory, used)
        if period is not None and np.any(np.isnan(period)):
            raise InvalidValueError(f"{where}: the refractory period "
                                    f"{model.refractory_text!r} is not a number (NaN)"
                                    f"{_at(period, np.isnan(period))} with these parameter "
                                    "values; it must be a time >= 0")
        if period is not None and np.any(period < 0):
            raise InvalidValueError(f"{where}: the refractory period "
                                    f"{model.refractory_text!r} is "
                                    f"{np.asarray(period)[period < 0].flat[0]:g} s"
                                    f"{_at(period, period < 0)}; it must be >= 0")


def _check_growth(model, values, divs, where):
    negative = [n for n in divs if n in values and np.any(np.asarray(values[n]) < 0)]
    if not negative:
        return
    if hasattr(model, "on_pre"):  # a SynapseModel: its event-driven traces
        states, odes = set(model.variables), {t.name: t.rhs for t in model.traces}
    else:
        states, odes = set(model.state_names), model.rhs
    for x, rhs in odes.items():
        by_name = {s.name: s for s in rhs.free_symbols}
        if x not in by_name:
            continue
        slope = sp.diff(rhs, by_name[x])
        names = {s.name for s in slope.free_symbols}
        if names & states or "t" in names:
            continue  # not a constant linear coefficient: no time constant to speak of
        for name in negative:
            if name not in names:
                continue
            now = _evaluate(slope, values)
            flipped = _evaluate(slope, {**values, name: np.abs(np.asarray(values[name]))})
            if now is None or flipped is None:
                continue
            bad = (now > 0) & (flipped < 0) & (np.asarray(values[name]) < 0)
            if not np.any(bad):
                continue
            shape = np.shape(bad)
            k = int(np.flatnonzero(bad)[0]) if shape else None
            value = np.broadcast_to(np.asarray(values[name]), shape).flat[k or 0]
            rate = np.broadcast_to(now, shape).flat[k or 0]
            raise InvalidValueError(
                f"{where}: parameter '{name}' is {value:g}"
                f"{'' if k is None else f' for neuron {k}'}, which makes {x} grow "
                f"exponentially (d(d{x}/dt)/d{x} = {rate:g} > 0) where a positive value "
                "makes it decay; time constants must be positive (for growth on purpose "
                f"write the equation so, e.g. d{x}/dt = {x}/tau with tau > 0)")


def state_dimension(model, name: str):
    """The declared dimension of state ``name`` of ``model`` (None if not declared)."""
    unit = model.eqs.odes[name].unit
    if unit is None:
        return None
    return u.DIMENSIONLESS if unit.strip() == "1" else u.parse_unit(unit)[1]


def read_initial(model, name: str, value, where: str, n: int, batch: int):
    """An initial value of state ``name``: a distribution (an object with ``sample``, its
    ``dimension`` checked if it has one), a number, a quantity string or an array of shape
    (n,) or (batch, n); its unit must be the state's."""
    what = f"{where}: init of '{name}'"
    want = state_dimension(model, name)
    if hasattr(value, "sample"):
        dim = getattr(value, "dimension", None)
        _same_unit(what, value, dim, want)
        return value
    if isinstance(value, str):
        number, dim = u.parse_quantity(value, where=what)
        _same_unit(what, value, dim, want)
        value = number
    elif isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, list,
                                                           tuple)):
        raise InvalidValueError(f"{what}: cannot use {value!r} ({type(value).__name__}); give "
                                "a number, a quantity string, an array or sg.Uniform/sg.Normal")
    return per_neuron(value, what, n, batch)


def check_declared_unit(model, name: str, value, what: str) -> None:
    """A value given with a unit (a quantity string) for variable ``name`` of a synapse
    model must have the unit ``name`` is declared with, unless that is dimensionless (the
    shortcut ``"v += w"`` declares ``w : 1`` and takes the target's unit)."""
    declared = model.eqs.declared.get(name)
    if not isinstance(value, str) or declared is None or declared.unit is None or \
            declared.unit.strip() == "1":
        return
    try:
        _, dim = u.parse_quantity(value, where=what)
    except UnitError:
        return  # not a quantity: an expression of i and j, checked when evaluated
    want = u.parse_unit(declared.unit)[1]
    if dim is not None and dim != want:
        raise InvalidValueError(f"{what}: {value!r} is in {_unit_name(dim)}, but the synapse "
                                f"model declares it in {_unit_name(want)}")


def _same_unit(what, value, dim, want):
    if dim is not None and want is not None and dim != want:
        raise InvalidValueError(f"{what}: {value!r} is in {_unit_name(dim)}, but the state "
                                f"variable is in {_unit_name(want)}")
