"""Checks on parsed expressions beyond syntax: finite real constants, bounded nesting, and
conditions used as numbers.

Each check runs where a value enters the model (in :mod:`snngen.parse` and
:mod:`snngen.model`), so every later pass may assume finite constants and bounded depth.

>>> constant_problem(sp.Integer(0) / 0), depth(sp.exp(sp.exp(sp.Symbol("x"))))
('is not a finite number', 3)
"""

from __future__ import annotations

import math

import sympy as sp

#: Deepest nesting an expression may have, counted after sums, products and chains of signs
#: are flattened (and after subexpressions are substituted, see :mod:`snngen.model`). Every
#: later pass (sympy, integration, printing, the generated Python and C) recurses once per level
#: and Python's parser refuses more than 200 nested parentheses, so a bound here keeps all of
#: them clear of RecursionError; real models are fewer than 20 levels deep.
MAX_DEPTH = 60
FLOAT_MAX = 1.7976931348623157e308


def depth(expr: sp.Basic, leaves: dict | None = None) -> int:
    """Nesting depth of ``expr``, without recursion (a deep tree must not crash the check).

    ``leaves`` gives symbols a depth of their own: the depth ``expr`` would have once those
    symbols are replaced (subexpressions by their definitions).

    >>> x = sp.Symbol("x")
    >>> depth(sp.exp(x) + 1), depth(sp.exp(x) + 1, {x: 5})
    (3, 7)
    """
    leaves = leaves or {}
    memo: dict[int, int] = {}
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in memo:
            continue
        if ready or not node.args:
            below = [memo[id(a)] for a in node.args]
            memo[id(node)] = max(below, default=0) + 1 if below else leaves.get(node, 1)
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if id(a) not in memo)
    return memo[id(expr)]


def is_boolean(value) -> bool:
    return isinstance(value, (sp.core.relational.Relational, sp.logic.boolalg.Boolean)) \
        and not isinstance(value, sp.Symbol)


def as_number(value):
    """A condition used as a number is 1 where it holds and 0 elsewhere (as in Python and
    Brian2: ``(v > 1) / tau``); numbers pass unchanged.

    >>> x = sp.Symbol("x")
    >>> as_number(x > 1), as_number(sp.true)
    (Piecewise((1, x > 1), (0, True)), 1)
    """
    if value is sp.true or value is sp.false:
        return sp.Integer(value is sp.true)
    if is_boolean(value):
        return sp.Piecewise((sp.Integer(1), value), (sp.Integer(0), True))
    return value


def constant_problem(value) -> str | None:
    """Why the constant ``value`` cannot be a float64 in generated code, or None if it can.

    sympy folds ``0/0``, ``1/0`` and ``(-1)**0.5`` into ``nan``, ``zoo`` and ``I``; ``1e309``
    reads as infinity and ``10**400`` does not fit a float64.

    >>> constant_problem(sp.Integer(1) / 0), constant_problem(sp.sqrt(2))
    ('is not a finite number', None)
    """
    if is_boolean(value) or not isinstance(value, sp.Expr) or value.free_symbols:
        return None
    if any(getattr(f, "is_random_draw", False) for f in value.atoms(sp.Function)):
        return None  # a random draw (rand(), randn()): a number only when drawn
    try:
        c = complex(value.evalf())
    except (TypeError, ValueError, OverflowError):
        return "is not a real number"
    if math.isnan(c.real) or math.isnan(c.imag):
        return "is not a finite number"
    if c.imag != 0:
        return f"is a complex number ({value.evalf(6)})"
    if not math.isfinite(c.real) or abs(c.real) > FLOAT_MAX:
        return "is too large for a 64-bit float (at most about 1.8e308)"
    return None


def leading_problem(value) -> str | None:
    """:func:`constant_problem` of the number sympy keeps first in a product or a sum
    (``1.0e+309*x``, ``zoo*x``, ``x + 2.0e+308``), in constant time: run after every step of
    a long chain, where checking the whole expression each time would be quadratic.

    >>> x = sp.Symbol("x")
    >>> leading_problem(x * sp.Float(1e308) * 10), leading_problem(x / 0), leading_problem(x + 1)
    ('is too large for a 64-bit float (at most about 1.8e308)', 'is not a finite number', None)
    """
    if isinstance(value, (sp.Mul, sp.Add)):
        value = value.args[0]
    if isinstance(value, sp.Expr) and value.is_Atom and not value.is_Symbol:
        return constant_problem(value)
    return None


POW_RANGE = ("this power is outside the range of a 64-bit float (about 1e-308 to 1.8e308); "
              "every constant must be a finite real number")


def pow_in_range(base, exponent) -> bool:
    """Whether ``base ** exponent`` (real numbers of any kind: int, Fraction, float, sympy) is
    within about 400 decades of 1, estimated without computing it: Python and sympy would
    compute ``9**9**9`` exactly, digit by digit, for minutes.

    >>> pow_in_range(10, 300), pow_in_range(9, 9**9), pow_in_range(0, -5), pow_in_range(2, -2000)
    (True, False, True, False)
    """
    if base == 0:
        return True  # 0 or a division by zero, found by whoever computes it
    try:
        size = float(exponent) * math.log10(max(abs(float(base)), 1e-300))
    except (TypeError, ValueError, OverflowError):
        return False
    return abs(size) <= 400


def checked_pow(base, exponent):
    """``base ** exponent``, or None for a constant power too large to compute exactly first."""
    if base.is_number and exponent.is_number and not (base.free_symbols | exponent.free_symbols):
        if not pow_in_range(base, exponent):
            return None
    return sp.Pow(base, exponent)
