"""Sympy helpers shared by the passes that rewrite model expressions.

sympy re-evaluates every node it rebuilds. For a ``Piecewise`` (what ``where(...)`` parses
to) that evaluation folds a ``Piecewise`` inside a condition into one and simplifies the
conditions with ``simplify_logic`` and numeric ``equals`` tests, which grows with the size of
the branches: a Runge-Kutta step, which substitutes each stage into the next, took over a
minute on a one-line model with a ``where`` whose condition reads the state.
:func:`substitute` replaces symbols the way ``xreplace`` does but rebuilds a ``Piecewise``
as written; every other node is rebuilt normally, so sums and products stay canonical.

It also holds the functions of the equation language that sympy lacks or differentiates in a
way no kernel can print: ``trunc`` (Brian2's ``int()``) and ``floor``, ``ceiling`` and
``sign`` with derivative 0.

>>> x, y = sp.symbols("x y", real=True)
>>> substitute(sp.Piecewise((x + 1, x > 0), (y, True)), {x: 2 * y})
Piecewise((2*y + 1, 2*y > 0), (y, True))
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import Boolean


def substitute(expr: sp.Basic, mapping: dict) -> sp.Basic:
    """``expr`` with each key of ``mapping`` replaced by its value, all at once (as
    ``xreplace``), without re-evaluating the ``Piecewise`` nodes it rebuilds."""
    if not mapping:
        return expr
    done: dict = {}

    def go(e: sp.Basic) -> sp.Basic:
        hit = mapping.get(e)
        if hit is not None:
            return hit
        if not e.args:
            return e
        out = done.get(e)
        if out is None:
            args = tuple(go(a) for a in e.args)
            out = e if args == e.args else rebuild(e, args)
            done[e] = out
        return out

    return go(expr)


def rebuild(expr: sp.Basic, args) -> sp.Basic:
    """``expr.func(*args)``, except that a ``Piecewise`` and its condition pairs are built
    as given: sympy would fold a ``Piecewise`` inside a condition and simplify the
    conditions (see the module's docstring)."""
    args = tuple(args)
    if isinstance(expr, sp.Piecewise) and all(isinstance(a, ExprCondPair) for a in args):
        # sp.Piecewise(..., evaluate=False) still rebuilds each pair (below)
        return sp.Basic.__new__(sp.Piecewise, *args)
    if isinstance(expr, ExprCondPair) and isinstance(args[1], Boolean):
        return sp.Tuple.__new__(ExprCondPair, *args)
    return expr.func(*args)


class trunc(sp.Function):  # noqa: N801 - reads like the maths
    """Brian2's ``int(x)``: the integer part of ``x``, rounded toward zero, as a float.

    Its derivative is 0 (almost everywhere), so a model that uses it can be trained; NumPy
    code (``lambdify``) evaluates it with ``np.trunc``.

    >>> trunc(sp.Float(-2.5)), trunc(sp.Integer(7) / 2)
    (-2, 3)
    """

    nargs = 1
    _imp_ = staticmethod(np.trunc)

    @classmethod
    def eval(cls, x):
        if x.is_Number and x.is_finite:
            return sp.Integer(int(x))
        return None

    def _eval_is_real(self):
        return self.args[0].is_real

    def fdiff(self, argindex=1):
        return sp.Integer(0)


class _Draw(sp.Function):
    """A random draw at one call site: ``rand()``/``randn()`` in a statement or condition.

    The one argument numbers the call sites of a block of statements (0, 1, ...), so that
    ``rand() + rand()`` is two draws, not ``2*rand()``. Lowering replaces each by a local
    drawn from Philox (``snngen.draw``); no printer ever sees one."""

    nargs = 1
    is_real = True
    is_random_draw = True

    @property
    def is_number(self):
        return False  # not a constant: sympy must neither fold nor compare it

    def _eval_evalf(self, prec):
        return None  # (and not mpmath's function of the same name)

    def fdiff(self, argindex=1):
        return sp.Integer(0)


class rand(_Draw):  # noqa: N801 - Brian2's name
    """Uniform in [0, 1), one per neuron (or synapse), trial, step and call site."""


class randn(_Draw):  # noqa: N801 - Brian2's name
    """Standard normal, one per neuron (or synapse), trial, step and call site."""


def draws(expr) -> list:
    """The draw call sites in ``expr``, sorted by number."""
    if not isinstance(expr, sp.Basic):
        return []
    return sorted(expr.atoms(_Draw), key=lambda d: int(d.args[0]))


def renumber(expr, offset: int):
    """``expr`` with every call site number shifted by ``offset``."""
    return expr.xreplace({d: d.func(sp.Integer(int(d.args[0]) + offset)) for d in draws(expr)})


def _flat(base):
    """``base`` (a sympy step function) with derivative 0: it is 0 wherever it exists, and the
    learning derivation must get a number, not an unevaluated ``Derivative`` or a
    ``DiracDelta`` no kernel can print. The class keeps sympy's name, so printers find it."""
    def zero(self, *args):
        return sp.Integer(0)
    return type(base.__name__, (base,), {"fdiff": zero, "_eval_derivative": zero,
                                        "__module__": __name__})


floor, ceiling, sign = _flat(sp.floor), _flat(sp.ceiling), _flat(sp.sign)
