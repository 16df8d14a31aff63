"""Dimension checking of equations: the dimension of a sympy expression, checked part by part.

Split from :mod:`snngen.units` (which reads units and quantities and re-exports
:func:`dimension_of` and :func:`check_equal`): a value of unknown dimension (a bare float)
matches anything, zero and infinities fit every unit, and a mismatch is a
:class:`~snngen.errors.UnitError` naming both sides with a caret under the culprit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction

import sympy

from snngen.errors import UnitError
from snngen.units import DIMENSIONLESS, Dimension, _dname, is_unit_name, unit_symbol


def _locate(line: str | None, *terms) -> tuple[int | None, int]:
    """Best-effort column and width of the first of ``terms`` found in ``line``."""
    if line is None:
        return None, 1
    texts = [str(t) for t in terms]
    texts += [s.name for t in terms if isinstance(t, sympy.Basic)
              for s in sorted(t.free_symbols, key=str) if isinstance(s, sympy.Symbol)]
    for text in texts:
        match = re.search(rf"(?<![\w.]){re.escape(text)}(?![\w.])", line)
        if match:
            return match.start(), len(text)
    return None, 1


_DIMLESS_FUNCS = {"exp", "log", "log10", "log2", "log1p", "expm1", "sin", "cos", "tan", "sinh",
                  "cosh", "tanh", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "asinh",
                  "acosh", "atanh", "erf", "erfc", "sigmoid", "trunc"}  # trunc: int()
_SAME_FUNCS = {"abs", "min", "max", "minimum", "maximum", "clip", "floor", "ceil", "ceiling"}
_ANY_TO_DIMLESS = {"sign", "heaviside", "rand", "randn"}


def dimension_of(expr: sympy.Expr, dims: Mapping[sympy.Symbol, Dimension | None],
                 where: str = "", line: str | None = None) -> Dimension | None:
    """Infer the dimension of ``expr``, checking that its parts are consistent.

    Parameters
    ----------
    expr : sympy.Expr
        A plain expression (no derivatives); relationals and booleans are dimensionless.
    dims : mapping of sympy.Symbol (or name) to Dimension or None
        ``None``, or a symbol missing here, is a wildcard that matches anything; a missing
        symbol that is a unit name (``ms``) has the unit's dimension. Numbers are
        dimensionless, except 0 and infinities, which match anything.
    where, line : str, optional
        Prefix of error messages, and the source line to show with a caret.

    Returns
    -------
    Dimension or None
        None where a wildcard or an unknown function makes the dimension unknown.

    Raises
    ------
    UnitError
        Terms of a sum, sides of a comparison or branches of a condition disagree; ``exp``,
        ``log``, ``sin``... of a dimensioned argument; a dimensioned exponent, or a dimensioned
        base raised to a non-numeric power. The message names both sides and their dimensions.

    Examples
    --------
    >>> from snngen.units import parse_unit
    >>> v, El, taum, ge = sympy.symbols("v El taum ge")
    >>> volt, second = parse_unit("volt")[1], parse_unit("second")[1]
    >>> dims = {v: volt, El: volt, ge: volt, taum: second}
    >>> dimension_of((ge - (v - El)) / taum, dims)
    Dimension('volt/second')
    >>> dimension_of(ge + taum, dims, line="dv/dt = ge + taum")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    snngen.errors.UnitError: cannot add 'ge' (volt) and 'taum' (second); every term of a sum ...
        dv/dt = ge + taum
                     ^^^^
    """
    by_name = {getattr(k, "name", str(k)): d for k, d in dims.items()}

    def error(message: str, *terms) -> UnitError:
        col, width = _locate(line, *terms)
        return UnitError(message, line, col, width, where or None)

    def agree(terms, verb: str, hint: str = "") -> Dimension | None:
        known = None
        for term in terms:
            dim = of(term)
            if dim is None or (term.is_Number and (term.is_zero or not term.is_finite)):
                continue
            if known is None:
                known = (term, dim)
            elif dim != known[1]:
                # The caret goes under a bare number if there is one: the likely culprit.
                culprits = (known[0], term) if known[0].is_number else (term, known[0])
                raise error(f"cannot {verb} '{known[0]}' ({_dname(known[1])}) and '{term}' "
                            f"({_dname(dim)}){hint}", *culprits)
        return known and known[1]

    def of(e) -> Dimension | None:
        if isinstance(e, sympy.core.relational.Relational):
            agree(e.args, "compare")
            return DIMENSIONLESS
        if isinstance(e, sympy.logic.boolalg.Boolean) and not isinstance(e, sympy.Symbol):
            for arg in e.args:
                of(arg)
            return DIMENSIONLESS
        if isinstance(e, sympy.Symbol):
            if e in dims:
                return dims[e]
            if e.name in by_name:
                return by_name[e.name]
            return unit_symbol(e.name)[1] if is_unit_name(e.name) else None
        if e.is_number:
            # 0*mV folds to 0 when parsed, and zero has every dimension (as in Brian2)
            return None if e.is_zero or e.is_infinite else DIMENSIONLESS
        if e.is_Add:
            return agree(e.args, "add", "; every term of a sum must have the same dimension")
        if e.is_Mul:
            factors = [of(arg) for arg in e.args]  # all of them, to check inside each
            return None if None in factors else math.prod(factors, start=DIMENSIONLESS)
        if e.is_Pow:
            return power(e)
        if isinstance(e, sympy.Piecewise):
            for _, cond in e.args:
                of(cond)
            return agree([branch for branch, _ in e.args], "mix", " in the branches of a condition")
        # Functions, Min/Max and anything else go by name; unknown ones are checked inside but
        # their own dimension is unknown.
        return function(e, type(e).__name__.lower())

    def power(e) -> Dimension | None:
        base, exponent = e.args
        bdim, edim = of(base), of(exponent)
        if edim is not None and not edim.is_dimensionless:
            raise error(f"the exponent '{exponent}' of '{e}' has dimension {edim}; exponents "
                        "must be dimensionless", exponent)
        if bdim is None or bdim.is_dimensionless:
            return bdim
        if exponent.is_Rational:
            return bdim ** Fraction(int(exponent.p), int(exponent.q))
        if exponent.is_Float:
            ratio = Fraction(float(exponent)).limit_denominator(1000)
            if math.isclose(float(ratio), float(exponent), rel_tol=1e-12):
                return bdim ** ratio
        raise error(f"'{e}' raises '{base}' ({bdim}) to the power '{exponent}'; a quantity with a "
                    "dimension can only be raised to a fixed rational power", base)

    def function(e, name: str) -> Dimension | None:
        args = e.args
        if name in _DIMLESS_FUNCS:
            for arg in args:
                dim = of(arg)
                if dim is not None and not dim.is_dimensionless:
                    shown_name = "int" if name == "trunc" else name  # as the user wrote it
                    raise error(f"{shown_name}() needs a dimensionless argument, but '{arg}' "
                                f"has dimension {dim}; divide it by a quantity in {dim}", arg)
            return DIMENSIONLESS
        if name == "sqrt" and len(args) == 1:
            dim = of(args[0])
            return None if dim is None else dim ** Fraction(1, 2)
        if name in _SAME_FUNCS:
            return agree(args, "mix", f" in {name}(); its arguments must have the same dimension")
        if name == "atan2":
            agree(args, "mix", " in atan2()")
            return DIMENSIONLESS
        if name == "where" and args:
            of(args[0])
            return agree(args[1:], "mix", " in the branches of where()")
        for arg in args:
            if isinstance(arg, (sympy.Expr, sympy.logic.boolalg.Boolean)):
                of(arg)
        return DIMENSIONLESS if name in _ANY_TO_DIMLESS else None

    if isinstance(expr, (int, float)):
        expr = sympy.Number(expr)
    return of(expr)


def check_equal(lhs_dim: Dimension | None, rhs_dim: Dimension | None, lhs_text: str,
                rhs_text: str, where: str = "", line: str | None = None) -> None:
    """Raise UnitError when both dimensions are known and differ.

    Parameters
    ----------
    lhs_dim, rhs_dim : Dimension or None
        None is unknown and never raises.
    lhs_text, rhs_text : str
        How the two sides are named in the message; ``rhs_text`` gets the caret in ``line``.
    where, line : str, optional
        Prefix of error messages, and the source line to show.

    Examples
    --------
    >>> from snngen.units import parse_unit
    >>> volt, second = parse_unit("volt")[1], parse_unit("second")[1]
    >>> check_equal(volt / second, None, "dv/dt", "-v/taum")  # unknown: nothing to check
    >>> check_equal(volt / second, volt, "dv/dt", "-v", line="dv/dt = -v")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    snngen.errors.UnitError: 'dv/dt' has dimension volt/second but '-v' has dimension volt; ...
        dv/dt = -v
                ^^
    """
    if lhs_dim is None or rhs_dim is None or lhs_dim == rhs_dim:
        return
    col, width = (line.find(rhs_text), len(rhs_text)) if line and rhs_text else (-1, 1)
    if col < 0 and line and "=" in line:
        # The right-hand side was rewritten by sympy: underline all after '=' (up to ': unit').
        match = re.search(r"=\s*(.*?)\s*(?::[^:=]*)?$", line)
        col, width = match.start(1), max(len(match.group(1)), 1)
    def has(dim: Dimension) -> str:
        return "is dimensionless" if dim.is_dimensionless else f"has dimension {dim}"

    raise UnitError(f"'{lhs_text}' {has(lhs_dim)} but '{rhs_text}' {has(rhs_dim)}; both sides "
                    "must have the same dimension",
                    line, col if col >= 0 else None, width, where or None)
