"""White noise in equations (Brian2's ``xi``): what is noise, checks, and the stochastic steps.

A name ``xi`` or ``xi_<suffix>`` in a differential equation is Gaussian white noise of unit
``second**-0.5``: ``dv/dt = -v/tau + sigma*sqrt(2/tau)*xi : volt`` is an Ornstein-Uhlenbeck
process of standard deviation ``sigma``. The same name in two equations is the same noise
(correlated); each neuron and each batch entry draws its own. An equation must be linear in
its noise, ``dx/dt = f(x, t) + sum_k g_k(x, t) xi_k``, as Brian2 requires.

Steps (Brian2's formulas, with ``dW_k = sqrt(dt) N_k`` and ``N_k`` a standard normal draw
per neuron and step: :func:`snngen.draw.normal2`):

- ``euler`` (Euler-Maruyama, additive noise only: ``g`` free of state variables)::

      x_new = x + dt f(x, t) + sum_k g_k(x, t) dW_k

- ``heun`` (stochastic Heun, any noise; Stratonovich)::

      x_s = x + sum_k g_k(x, t) dW_k
      x_new = x + dt f(x, t) + 1/2 sum_k dW_k (g_k(x, t) + g_k(x_s, t + dt))

- ``milstein`` (derivative-free Milstein, diagonal noise: one noise per equation; the
  correction has ``dW**2`` as Brian2 writes it)::

      x_s = x + dt f(x, t) + sqrt(dt) g_k(x, t)
      x_new = x + dt f(x, t) + g_k(x, t) dW_k + (g_k(x_s, t) - g_k(x, t)) dW_k**2 / (2 sqrt(dt))

``method="auto"`` takes ``euler`` for additive noise and ``heun`` otherwise, as Brian2 does;
``exact``, ``exponential_euler``, ``rk2`` and ``rk4`` integrate no stochastic equation.

>>> import sympy as sp
>>> v, tau, sigma, xi = sp.symbols("v tau sigma xi", real=True)
>>> f, g = split({v: -v / tau + sigma * xi}, (xi,))
>>> f[v], g[v]
(-v/tau, {xi: sigma})
"""

from __future__ import annotations

import re

import sympy as sp

from .errors import EquationError, IntegrationError
from .symbolic import draws, substitute

_NOISE = re.compile(r"xi(_[A-Za-z0-9_]+)?\Z")
#: Integration methods that handle noise, and which noise each needs.
STOCHASTIC_METHODS = ("euler", "heun", "milstein")


def is_noise(name: str) -> bool:
    """True for Brian2's white-noise names: ``xi`` and ``xi_<suffix>``.

    >>> [is_noise(n) for n in ("xi", "xi_e", "xi2", "x")]
    [True, True, False, False]
    """
    return bool(_NOISE.match(name))


def normal(noise: sp.Symbol) -> sp.Symbol:
    """The standard normal draw of one step that stands for ``noise`` in discrete updates."""
    return sp.Symbol(f"_N_{noise.name}", real=True)


def check_draws(eqs, where: str, allow_constant: bool = False) -> None:
    """Refuse ``rand()``/``randn()`` in equations (drawn once per step, they would make the
    integration depend on how often a method evaluates the right-hand side)."""
    for e in eqs.lines:
        if e.expr is not None and draws(e.expr) and not (
                allow_constant and e.kind == "subexpression" and "constant over dt" in e.flags):
            name = type(draws(e.expr)[0]).__name__
            raise EquationError(f"{name}() can be used in thresholds, resets, synaptic "
                                "statements and neuron subexpressions flagged (constant over "
                                "dt) (drawn once per step); for noise in equations use white "
                                "noise 'xi' (dv/dt = ... + sigma*sqrt(2/tau)*xi)", e.line,
                                max(e.line.find(name + "("), 0), len(name) + 2, where)


def check(model) -> None:
    """Refuse noise where Brian2 does: as a declared name, outside differential equations,
    or entering an equation other than linearly (EquationError, with the line); and random
    draws in equations or the refractory period."""
    where = f"model '{model.name}'"
    check_draws(model.eqs, where, allow_constant=True)
    for name in model.eqs.constant_over_dt:
        for stmt in model.reset:
            if name in {x.name for x in model.eqs.resolve(stmt.expr).free_symbols}:
                raise EquationError(f"the reset reads '{name}', a (constant over dt) "
                                    "subexpression: not built yet (it is evaluated before the "
                                    "update; use it in the equations or the threshold)",
                                    stmt.line, max(stmt.line.find(name), 0), len(name), where)
    if draws(model.refractory):
        raise EquationError("rand() and randn() cannot set a refractory period",
                            str(model.refractory_text), 0, 1, where)
    for e in model.eqs.lines:
        if is_noise(e.name):
            raise EquationError(f"'{e.name}' is white noise (names 'xi' and 'xi_<suffix>' are "
                                "reserved for it); give this variable another name", e.line,
                                e.line.find(e.name), len(e.name), where)
    places = [("threshold", model.threshold, model.threshold_text)]
    places += [("reset", s.expr, s.line) for s in model.reset]
    places += [("refractory", model.refractory, str(model.refractory_text))]
    for what, expr, line in places:
        found = sorted(s.name for s in getattr(expr, "free_symbols", ()) if is_noise(s.name))
        if found:
            raise EquationError(f"white noise '{found[0]}' can only appear in differential "
                                f"equations, not in the {what}", line,
                                max(line.find(found[0]), 0), len(found[0]), where)
    for name, rhs in model.rhs.items():
        line = model.eqs.odes[name].line
        noises = [s for s in rhs.free_symbols if is_noise(s.name)]
        for xi in noises:
            g = sp.diff(rhs, xi)
            if g.free_symbols & set(noises) or sp.diff(g, xi) != 0:
                raise EquationError(
                    f"d{name}/dt must be linear in its white noise '{xi.name}' (of the form "
                    f"f + g*{xi.name}, with g free of noise)", line,
                    max(line.find(xi.name), 0), len(xi.name), where)


def noise_of(rhs: dict[sp.Symbol, sp.Expr]) -> tuple[sp.Symbol, ...]:
    """The noise symbols in right-hand sides, sorted by name."""
    found = set().union(*(e.free_symbols for e in rhs.values())) if rhs else set()
    return tuple(sorted((s for s in found if is_noise(s.name)), key=lambda s: s.name))


def split(rhs, noise):
    """(drift f, {noise: coefficient g}) of every equation ``dx/dt = f + sum g_k xi_k``."""
    zero = {xi: sp.Integer(0) for xi in noise}
    f = {x: substitute(e, zero) for x, e in rhs.items()}
    g = {x: {xi: c for xi in noise if (c := sp.diff(e, xi)) != 0} for x, e in rhs.items()}
    return f, g


def step(rhs, method: str, noise, name: str, dt: sp.Symbol, t: sp.Symbol):
    """(method, new values) of one stochastic step of ``rhs`` (Brian2's formulas above)."""
    if method == "auto":
        method = "heun" if _multiplicative(rhs, noise) else "euler"
    if method not in STOCHASTIC_METHODS:
        raise IntegrationError(
            f"method '{method}' cannot integrate the stochastic equations of model '{name}' "
            f"(white noise {', '.join(s.name for s in noise)}), as in Brian2: use "
            "method='euler' (additive noise), 'heun' or 'milstein', or 'auto'")
    f, g = split(rhs, noise)
    root = sp.sqrt(dt)
    dw = {xi: root * normal(xi) for xi in noise}
    if method == "euler":
        if _multiplicative(rhs, noise):
            raise IntegrationError(
                f"method 'euler' integrates additive noise only, and model '{name}' has "
                "noise multiplied by a state variable: use method='heun' or 'milstein' "
                "(or 'auto')")
        return method, {x: x + dt * f[x] + sum(c * dw[xi] for xi, c in g[x].items())
                        for x in rhs}
    if method == "heun":
        support = {x: x + sum(c * dw[xi] for xi, c in g[x].items()) for x in rhs}
        later = {x: {xi: substitute(c, {**support, t: t + dt}) for xi, c in g[x].items()}
                 for x in rhs}
        return method, {x: x + dt * f[x] + sum(dw[xi] * (c + later[x][xi]) / 2
                                               for xi, c in g[x].items()) for x in rhs}
    # milstein: diagonal noise only
    for x in rhs:
        if len(g[x]) > 1:
            raise IntegrationError(
                f"method 'milstein' needs diagonal noise (one white noise per equation), and "
                f"d{x.name}/dt of model '{name}' has {len(g[x])}: use method='heun'")
    new = {}
    for x in rhs:
        if not g[x]:
            new[x] = x + dt * f[x]
            continue
        (xi, c), = g[x].items()
        support = {y: y + dt * f[y] + root * g[y].get(xi, 0) for y in rhs}
        later = substitute(c, support)
        new[x] = x + dt * f[x] + c * dw[xi] + (later - c) * dw[xi] ** 2 / (2 * root)
    return method, new


def _multiplicative(rhs, noise) -> bool:
    states = set(rhs)
    return any(sp.diff(e, xi).free_symbols & states for e in rhs.values() for xi in noise)
