"""Model -> DiscreteModel: integration methods as data, and loop-invariant hoisting.

Methods, tried in this order by ``method="auto"``: ``exact`` (linear, constant coefficients:
``x' = Phi x + Psi b`` with ``Phi = exp(A dt)`` evaluated numerically once per run, so cases
that are singular in closed form, such as ``tau_m == tau_syn``, need no special handling),
``exponential_euler`` (each equation linear in its own variable), ``euler``. ``rk2`` and ``rk4``
can be forced.

>>> from snngen.model import NeuronModel
>>> m = NeuronModel("dv/dt = (El - v) / tau : 1", threshold="v > 1", reset="v = 0")
>>> d = discretise(m)
>>> d.method, d.updates[0][1]
('exact', _P0_0*v + _k0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import stochastic
from .errors import IntegrationError
from .model import METHODS, NeuronModel, check_method  # noqa: F401 - METHODS re-exported
from .parse import symbol
from .symbolic import rebuild, substitute

DT = symbol("dt")
T = symbol("t")
#: Flag that is true while a neuron is refractory (provided by the backend).
REFRACTORY = sp.Symbol("_refractory")


def timestep(seconds, dt: float) -> np.ndarray:
    """Brian2's ``timestep()``: the step a time falls in, ``floor((t + 1e-3 dt) / dt)``, with
    a tolerance of 1e-3 dt so that whole multiples of dt computed in floating point stay in
    their step (spike-source times; refractory periods, in whole steps). The simulation
    kernels compute the same for refractory periods in their generated constants code
    (``snngen.ir.lower``).

    >>> timestep([0.0, 0.003 - 1e-18, 0.0025, 0.00299], 1e-3).tolist()
    [0, 3, 2, 2]
    """
    return np.floor((np.asarray(seconds, np.float64) + 1e-3 * dt) / dt).astype(np.int64)


class exprel(sp.Function):  # noqa: N801 - reads like the maths
    """``expm1(x)/x`` with the removable singularity at 0 filled in (= 1)."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Integer(1)
        return None

    def fdiff(self, argindex=1):
        x = self.args[0]
        return (sp.exp(x) * x - sp.exp(x) + 1) / x**2


@dataclass(frozen=True)
class DiscreteModel:
    """One time step of a neuron model, ready to lower.

    ``constants`` are loop-invariant (parameters and ``dt`` only) and are computed once, in
    float64, before the time loop; ``updates`` are simultaneous assignments of the new state;
    ``condition`` is the spike test and ``g`` its threshold function (spike iff ``g > 0``).
    """

    model: NeuronModel
    method: str
    propagators: tuple[Propagator, ...]
    constants: tuple[tuple[sp.Symbol, sp.Expr], ...]
    updates: tuple[tuple[sp.Symbol, sp.Expr], ...]
    condition: sp.Basic | None
    g: sp.Expr | None
    reset: tuple[tuple[sp.Symbol, sp.Expr], ...]
    refractory: sp.Expr | None
    #: white-noise names; in ``updates`` each is a standard normal draw per neuron and step,
    #: :func:`snngen.stochastic.normal` (``_N_xi``)
    noise: tuple[str, ...] = ()

    def __str__(self) -> str:
        out = [f"DiscreteModel '{self.model.name}' (method: {self.method})", "  once per run:"]
        for p in self.propagators:
            out.append(f"    {p.name}: exp(A dt) and its integral, A = {p.a.tolist()}")
            out.append("      entries: " + ", ".join(f"{s}={kind}[{i},{j}]" for kind, ents in
                                                    (("Phi", p.phi), ("Psi", p.psi))
                                                    for (i, j), s in ents))
        out += [f"    {s} = {e}" for s, e in self.constants]
        if not self.constants and not self.propagators:
            out.append("    (nothing)")
        out.append("  every step:")
        out += [f"    {s} <- {e}" for s, e in self.updates]
        if self.condition is not None:
            out.append(f"  spike if: {self.condition}")
        out += [f"  on spike: {s} = {e}" for s, e in self.reset]
        if self.refractory is not None and self.model.refractory_is_condition:
            out.append(f"  refractory after a spike until not: {self.refractory}")
        elif self.refractory is not None:
            out.append(f"  refractory for: {self.refractory} s")
        if self.noise:
            out.append("  draws every step: " + ", ".join(
                f"_N_{n} ~ N(0, 1) (white noise {n})" for n in self.noise))
        return "\n".join(out)


# -- linearity analysis ---------------------------------------------------------------------
def _linear_system(rhs: dict[sp.Symbol, sp.Expr], varying: set[sp.Symbol]):
    """Return (A, b) if rhs = A x + b with A free of state, time and varying inputs."""
    states = list(rhs)
    bad = set(states) | {T} | varying
    rows, b = [], []
    for x in states:
        f = sp.expand(rhs[x])
        row = [f.diff(y) for y in states]
        if any(c.free_symbols & bad for c in row):
            return None
        # sympy zeros: a bare state (dx/dt = y) is replaced whole, by the mapping's own value
        rest = f.xreplace({y: sp.Integer(0) for y in states})
        if T in rest.free_symbols:
            return None
        if sp.expand(f - sum(c * y for c, y in zip(row, states)) - rest) != 0:
            return None
        rows.append(row)
        b.append(rest)
    return sp.ImmutableMatrix(rows), sp.Matrix(b)


@dataclass(frozen=True)
class Propagator:
    """``x(t+dt) = Phi x + Psi b`` for ``dx/dt = A x + b``; entries computed numerically.

    ``a`` holds the symbolic coefficients (parameters only); ``phi``/``psi`` name the
    structurally non-zero entries as ``((i, j), symbol)`` pairs. The values come from
    :func:`snngen.linalg.propagate`, once per run, so equal time constants need no special
    case and never produce NaN.
    """

    name: str
    a: sp.ImmutableMatrix
    phi: tuple[tuple[tuple[int, int], sp.Symbol], ...]
    psi: tuple[tuple[tuple[int, int], sp.Symbol], ...]


def _reach(a: sp.Matrix) -> list[set[int]]:
    """reach[i]: the variables whose current value influences variable i after a step."""
    n = a.shape[0]
    reach = [{i} | {j for j in range(n) if a[i, j] != 0} for i in range(n)]
    changed = True
    while changed:
        changed = False
        for i in range(n):
            new = set().union(*(reach[j] for j in reach[i]))
            if new - reach[i]:
                reach[i] |= new
                changed = True
    return reach


def _exact(rhs, varying, name="_P"):
    # clamped (refractory) variables arrive here with a right-hand side of 0 (see _step):
    # their rows of A and b are zero, so they stay where they are
    lin = _linear_system(rhs, varying)
    if lin is None:
        return None
    a, b = lin
    states = list(rhs)
    reach = _reach(a)
    phi, psi, new = [], [], {}
    for i, x in enumerate(states):
        if all(a[i, j] == 0 for j in range(len(states))) and b[i] == 0:
            new[x] = x  # nothing drives x: it stays
            continue
        expr = sp.Integer(0)
        for j in sorted(reach[i]):
            p = sp.Symbol(f"{name}{i}_{j}", real=True)
            phi.append(((i, j), p))
            expr += p * states[j]
            if b[j] != 0:
                q = sp.Symbol(f"{name}Q{i}_{j}", real=True)
                psi.append(((i, j), q))
                expr += q * b[j]
        new[x] = expr
    return new, Propagator(name, a, tuple(phi), tuple(psi))


def _exact_event(rhs):
    """Closed form over a symbolic interval for decoupled event-driven traces, or None."""
    out = {}
    for x, f in rhs.items():
        f = sp.expand(f)
        a = f.diff(x)
        rest = sp.expand(f - a * x)
        if a.free_symbols & set(rhs) or rest.free_symbols & set(rhs):
            return None
        out[x] = x * sp.exp(a * DT) + rest * DT * exprel(a * DT) if a != 0 else x + rest * DT
    return out


def _exponential_euler(rhs, varying, need_linear=True):
    out, any_linear = {}, not need_linear
    for x, f in rhs.items():
        a = sp.expand(f).diff(x)
        if x in a.free_symbols or sp.expand(f - a * x).has(x):
            return None
        if a != 0:
            any_linear = True
        out[x] = x + DT * f * exprel(a * DT) if a != 0 else x + DT * f
    return out if any_linear else None


def _subs(rhs, state):
    return {x: substitute(f, state) for x, f in rhs.items()}


def _euler(rhs, varying):
    return {x: x + DT * f for x, f in rhs.items()}


def _rk2(rhs, varying):
    k1 = rhs
    mid = {x: x + DT / 2 * k1[x] for x in rhs}
    k2 = _subs(rhs, {**mid, T: T + DT / 2})
    return {x: x + DT * k2[x] for x in rhs}


def _rk4(rhs, varying):
    k1 = rhs
    k2 = _subs(rhs, {**{x: x + DT / 2 * k1[x] for x in rhs}, T: T + DT / 2})
    k3 = _subs(rhs, {**{x: x + DT / 2 * k2[x] for x in rhs}, T: T + DT / 2})
    k4 = _subs(rhs, {**{x: x + DT * k3[x] for x in rhs}, T: T + DT})
    return {x: x + DT / 6 * (k1[x] + 2 * k2[x] + 2 * k3[x] + k4[x]) for x in rhs}


_STEPPERS = {"exponential_euler": _exponential_euler, "euler": _euler, "rk2": _rk2, "rk4": _rk4}


def _step(rhs, method, varying, name, frozen=frozenset(), noise=()):
    """Return (method, new values, propagators) for one step of ``rhs``."""
    if frozen:
        rhs = {x: (sp.Integer(0) if x in frozen else f) for x, f in rhs.items()}
    check_method(method, f"model '{name}'")
    if noise:
        return (*stochastic.step(rhs, method, noise, name, DT, T), ())
    if method in ("heun", "milstein"):
        raise IntegrationError(f"method '{method}' integrates stochastic equations (with white "
                               f"noise xi), and model '{name}' has none: use 'auto', 'euler', "
                               "'rk2' or 'rk4'")
    order = ("exact", "exponential_euler", "euler") if method == "auto" else (method,)
    for m in order:
        if m == "exact":
            out = _exact(rhs, varying, "_R" if frozen else "_P")
            if out is not None:
                return m, out[0], (out[1],)
            continue
        if m == "exponential_euler" and frozen:
            # the variables that made it exponential Euler may be the clamped ones: the
            # refractory step of the same model then has no linear term left, and is Euler
            out = _exponential_euler(rhs, varying, need_linear=False)
        else:
            try:
                out = _STEPPERS[m](rhs, varying)
            except (TypeError, ValueError) as err:  # sympy rebuilding a stage: see below
                raise IntegrationError(
                    f"method '{m}' cannot build its steps for model '{name}': sympy could not "
                    f"evaluate a stage ({err}), typically a max/min whose arguments contain a "
                    "where(); use method='euler' or write those terms without where()"
                ) from None
        if out is not None:
            return m, out, ()
    why = {"exact": "it is not linear with constant coefficients",
           "exponential_euler": "an equation is not linear in its own variable"}[method]
    raise IntegrationError(f"method '{method}' cannot integrate model '{name}': {why}. "
                           "Use method='auto' or 'euler'/'rk2'/'rk4'.")


# -- hoisting -------------------------------------------------------------------------------
class _Hoister:
    """Replace maximal loop-invariant subexpressions by constants ``_k0, _k1, ...``."""

    def __init__(self, variant: set[sp.Symbol]):
        self.variant = variant
        self.constants: dict[sp.Expr, sp.Symbol] = {}
        # RK methods substitute a stage into every occurrence of the state, so the same
        # subtree recurs many times: without a memo the walk is exponential in the nesting
        self.done: dict[sp.Basic, sp.Basic] = {}
        self.fixed: dict[sp.Basic, bool] = {}

    def _const(self, expr):
        if expr.is_Number or expr.is_Symbol or expr.is_Atom:
            return expr
        if expr not in self.constants:
            self.constants[expr] = sp.Symbol(f"_k{len(self.constants)}", real=True)
        return self.constants[expr]

    def invariant(self, expr):
        # memoised for the same reason as ``done`` (sympy's free_symbols walks a tree, not
        # the shared graph)
        if expr not in self.fixed:
            self.fixed[expr] = expr not in self.variant and all(map(self.invariant, expr.args))
        return self.fixed[expr]

    def __call__(self, expr):
        if expr not in self.done:
            self.done[expr] = self._hoist(expr)
        return self.done[expr]

    def _hoist(self, expr):
        if self.invariant(expr):
            return self._const(expr)
        if isinstance(expr, (sp.Add, sp.Mul)):
            inv = [a for a in expr.args if self.invariant(a)]
            var = [self(a) for a in expr.args if not self.invariant(a)]
            if inv:
                var.append(self._const(expr.func(*inv)))
            return expr.func(*var)
        if isinstance(expr, sp.Piecewise):  # a pair is never a constant of its own
            return rebuild(expr, [rebuild(p, (self(p.expr), self(p.cond))) for p in expr.args])
        if expr.args:
            return rebuild(expr, [self(a) for a in expr.args])
        return expr


def discretise(model: NeuronModel, method: str | None = None,
               varying: frozenset[str] = frozenset()) -> DiscreteModel:
    """Discretise ``model`` with ``method`` (default: the model's own choice).

    ``varying`` names parameters that change during a run (time-varying inputs): they are
    never hoisted out of the time loop and make a system non-constant for ``exact``.
    """
    method = method or model.method
    rhs = {symbol(n): e for n, e in model.rhs.items()}
    vary = {symbol(n) for n in varying}
    noise = stochastic.noise_of(rhs)
    method, new, props = _step(rhs, method, vary, model.name, noise=noise)
    clamped = {symbol(n) for n in model.clamped}
    if clamped and model.refractory is not None:
        _, new_ref, props_ref = _step(rhs, method, vary, model.name, frozen=clamped,
                                      noise=noise)
        if props:  # rows that never see a clamped variable are the same in both propagators
            states = list(rhs)
            reach = _reach(props[0].a)
            for k, x in enumerate(states):
                if not {states[j] for j in reach[k]} & clamped:
                    new_ref[x] = new[x]
        new = {x: (e if sp.expand(e - new_ref[x]) == 0
                   else sp.Piecewise((new_ref[x], REFRACTORY), (e, True)))
               for x, e in new.items()}
        used = set().union(*(e.free_symbols for e in new.values()))
        props += tuple(Propagator(p.name, p.a, tuple(e for e in p.phi if e[1] in used),
                                  tuple(e for e in p.psi if e[1] in used)) for p in props_ref
                       if {s for _, s in p.phi + p.psi} & used)
    variant = set(rhs) | vary | {T, REFRACTORY, symbol("i")} | {stochastic.normal(xi)
                                                                 for xi in noise}
    hoist = _Hoister(variant)
    updates = tuple((x, hoist(new[x])) for x in rhs)
    constants = tuple((s, e) for e, s in hoist.constants.items())
    # subexpressions mean the same in conditions, resets and refractoriness as in the ODEs
    resolve = model.eqs.resolve
    g, condition = None, model.threshold
    if condition is not None:
        condition = resolve(condition)
        if isinstance(condition, (sp.StrictGreaterThan, sp.GreaterThan)):
            g = condition.lhs - condition.rhs
        elif isinstance(condition, (sp.StrictLessThan, sp.LessThan)):
            g = condition.rhs - condition.lhs
    reset = []
    for stmt in model.reset:
        target = symbol(stmt.target)
        reset.append((target, resolve(stmt.value(target))))
    refractory = resolve(model.refractory) if model.refractory is not None else None
    return DiscreteModel(model, method, props, constants, updates, condition, g, tuple(reset),
                         refractory, tuple(xi.name for xi in noise))
