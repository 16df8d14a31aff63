"""Surrogate derivatives of the spike nonlinearity, as sympy expressions in one registry.

The forward pass keeps the hard step ``z = H(g)``; in derived equations ``H'(g)`` is replaced
by a surrogate. :class:`Spike` is that step as a sympy function whose derivative *is* the
surrogate, so ordinary sympy differentiation of a step produces surrogate-gradient equations.

>>> import sympy as sp
>>> g = sp.Symbol("g", real=True)
>>> surrogate("fast_sigmoid", g)
(10*Abs(g) + 1)**(-2)
>>> sp.diff(Spike(g, "triangle"), g)
H'(g)
>>> type(_).expression(g)
Max(0, 1 - Abs(g))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from ..errors import SnngenError, did_you_mean


@dataclass(frozen=True)
class Surrogate:
    """A surrogate ``H'(g)``: a function of ``g`` and named parameters with defaults."""

    name: str
    build: object          # (g, **params) -> sympy expression
    defaults: dict

    def __call__(self, g, **params):
        unknown = set(params) - set(self.defaults)
        if unknown:
            first = sorted(unknown)[0]
            raise SnngenError(f"surrogate '{self.name}' has no parameter '{first}' (it has "
                              f"{', '.join(self.defaults) or 'none'})."
                              + did_you_mean(first, self.defaults))
        return self.build(g, **{**self.defaults, **params})


def _sigmoid(x):
    return 1 / (1 + sp.exp(-x))


SURROGATES = {s.name: s for s in (
    Surrogate("fast_sigmoid", lambda g, beta: 1 / (beta * sp.Abs(g) + 1) ** 2,
              {"beta": sp.Integer(10)}),                                # SuperSpike
    Surrogate("sigmoid", lambda g, beta: beta * _sigmoid(beta * g) * (1 - _sigmoid(beta * g)),
              {"beta": sp.Integer(5)}),
    Surrogate("arctan", lambda g, alpha: alpha / 2 / (1 + (sp.pi / 2 * alpha * g) ** 2),
              {"alpha": sp.Integer(2)}),
    Surrogate("triangle", lambda g, gamma, width: gamma * sp.Max(0, 1 - sp.Abs(g) / width),
              {"gamma": sp.Integer(1), "width": sp.Integer(1)}),       # Bellec et al. 2020
    Surrogate("exponential", lambda g, alpha, beta: alpha * sp.exp(-beta * sp.Abs(g)),
              {"alpha": sp.Integer(1), "beta": sp.Integer(1)}),         # SLAYER-style
    Surrogate("gaussian", lambda g, sigma: sp.exp(-g**2 / (2 * sigma**2))
              / (sp.sqrt(2 * sp.pi) * sigma), {"sigma": sp.Rational(1, 2)}),
    Surrogate("boxcar", lambda g, width: sp.Piecewise((1 / width, sp.Abs(g) < width / 2),
                                                      (0, True)), {"width": sp.Integer(1)}),
    Surrogate("straight_through", lambda g: sp.Integer(1), {}),
)}


@dataclass(frozen=True)
class SurrogateSpec:
    """A surrogate with its parameters (``sg.surrogate("fast_sigmoid", beta=5)``), accepted
    wherever a surrogate name is. Printed as ``fast_sigmoid(beta=5)``; ``key`` names it in
    generated code (``fast_sigmoid__beta_5``; the plain name without parameters)."""

    name: str
    params: tuple = ()

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params)
        return f"{self.name}({args})" if args else self.name

    @property
    def key(self) -> str:
        def word(v: float) -> str:
            return f"{v:g}".replace("-", "m").replace(".", "p").replace("+", "")
        return self.name + "".join(f"__{k}_{word(v)}" for k, v in self.params)


def spec(choice) -> SurrogateSpec:
    """A surrogate name or :class:`SurrogateSpec` as a checked spec (unknown names and
    parameters refused with the available ones).

    >>> str(spec("arctan")), spec(surrogate_spec("fast_sigmoid", beta=5)).key
    ('arctan', 'fast_sigmoid__beta_5')
    """
    if isinstance(choice, SurrogateSpec):
        return choice
    if not isinstance(choice, str):
        raise SnngenError(f"a surrogate is a name such as 'fast_sigmoid' or "
                          f"sg.surrogate('fast_sigmoid', beta=5), got {choice!r}")
    return surrogate_spec(choice)


def surrogate_spec(name: str, **params) -> SurrogateSpec:
    """The surrogate ``name`` with ``params`` (numbers > 0) instead of its defaults."""
    if not isinstance(name, str) or name not in SURROGATES:
        raise SnngenError(f"unknown surrogate {name!r}." + did_you_mean(str(name), SURROGATES)
                          + f" Available: {', '.join(SURROGATES)}.")
    defaults = SURROGATES[name].defaults
    for k, v in params.items():
        if k not in defaults:
            raise SnngenError(f"surrogate '{name}' has no parameter '{k}' (it has "
                              f"{', '.join(defaults) or 'none'})." + did_you_mean(k, defaults))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or \
                v == float("inf"):
            raise SnngenError(f"surrogate '{name}': {k} must be a finite number > 0, got "
                              f"{v!r}")
    return SurrogateSpec(name, tuple(sorted((k, float(v)) for k, v in params.items())))


def surrogate(name, g, **params) -> sp.Expr:
    """The surrogate ``name`` (a name or a :class:`SurrogateSpec`) evaluated at ``g`` (a
    sympy expression)."""
    chosen = spec(name)
    values = {k: sp.nsimplify(v) for k, v in chosen.params}
    return SURROGATES[chosen.name](g, **{**values, **params})


@functools.cache
def _spike_function(chosen: SurrogateSpec) -> type:
    name = chosen

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return surrogate_function(name)(self.args[0])

    def printed(self, printer):
        return f"H({printer.doprint(self.args[0])})"

    return type(f"H_{chosen.key}", (sp.Function,), {"nargs": 1, "fdiff": fdiff,
                                                      "_sympystr": printed,
                                                      "surrogate": chosen})


def spike_function(name) -> type:
    """The step function ``H`` whose sympy derivative is the surrogate ``name`` (a name or
    a :class:`SurrogateSpec`)."""
    return _spike_function(spec(name))


def surrogate_function(name) -> type:
    """``H'(g)`` as an opaque sympy function, so that backends can evaluate it in one place
    (and apply a sparse cut-off to it); ``.expression(g)`` gives its formula."""
    return _surrogate_function(spec(name))


@functools.cache
def _surrogate_function(chosen: SurrogateSpec) -> type:
    name = chosen

    def fdiff(self, argindex=1):
        # d H'(x)/dx at x = the argument: differentiating with respect to the argument itself
        # fails for any argument but a bare symbol (the chain rule supplies the rest)
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        x = sp.Dummy("g", real=True)
        return sp.diff(surrogate(name, x), x).xreplace({x: self.args[0]})

    def printed(self, printer):
        return f"H'({printer.doprint(self.args[0])})"

    def expression(g):
        return surrogate(name, g)

    return type(f"dH_{chosen.key}", (sp.Function,), {
        "nargs": 1, "fdiff": fdiff, "_sympystr": printed, "derivative_of": chosen,
        "expression": staticmethod(expression)})


def Spike(g, name="fast_sigmoid"):  # noqa: N802 - reads as the maths
    """``H(g)``, the Heaviside step whose derivative is the named surrogate (a name or a
    :class:`SurrogateSpec`)."""
    return spike_function(name)(g)
