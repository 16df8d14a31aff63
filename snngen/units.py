"""Physical units and dimension checking, Brian2 style.

Every number inside snngen is a plain float in SI base units; units only give scale factors when
a value is read (``"20*ms"`` becomes ``0.02``) and dimensions to check equations with. A value
given as a bare float has an unknown dimension, which matches anything: units are optional, but
checked wherever they are given.

>>> parse_quantity("-49 mV")
(-0.049, Dimension('volt'))
>>> str(parse_unit("mV/ms")[1])
'volt/second'
"""

from __future__ import annotations

import ast
import math
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from snngen.errors import InvalidValueError, UnitError, did_you_mean, shown
from snngen.exprcheck import FLOAT_MAX, MAX_DEPTH, POW_RANGE, pow_in_range

__all__ = ["DIMENSIONLESS", "UNIT_NAMES", "Dimension", "check_equal", "dimension_of",
           "is_unit_name", "parse_quantity", "parse_unit", "unit_symbol"]

_BASE_SYMBOLS = ("m", "kg", "s", "A", "K", "mol", "cd")


def _exp_text(e: Fraction | int) -> str:
    return str(e) if isinstance(e, int) else f"({e})"


@dataclass(frozen=True, repr=False)
class Dimension:
    """Exponents of the seven SI base units: metre, kilogram, second, amp, kelvin, mole, candela.

    Exponents are stored as ``int`` when whole, else as ``Fraction`` (``sqrt`` halves them).

    >>> volt = Dimension((2, 1, -3, -1, 0, 0, 0))
    >>> second = Dimension((0, 0, 1, 0, 0, 0, 0))
    >>> str(volt / second), str(volt * second / volt), str(second ** -1)
    ('volt/second', 'second', 'hertz')
    >>> str(volt ** 2), str(second ** Fraction(1, 2)), str(DIMENSIONLESS)
    ('volt^2', 'second^(1/2)', '1')
    >>> str(Dimension((1, 0, -3, 0, 0, 0, 0)))
    'm s^-3'
    """

    exps: tuple[Fraction | int, ...] = (0,) * 7

    def __post_init__(self) -> None:
        if len(self.exps) != 7:
            raise ValueError(f"a Dimension needs 7 exponents (m kg s A K mol cd), got {self.exps}")
        # Normalise so that equal dimensions compare, hash and print alike.
        exps = tuple(Fraction(e) for e in self.exps)
        object.__setattr__(self, "exps", tuple(int(e) if e.denominator == 1 else e for e in exps))

    def __mul__(self, other: Dimension) -> Dimension:
        if not isinstance(other, Dimension):
            return NotImplemented
        return Dimension(tuple(a + b for a, b in zip(self.exps, other.exps, strict=True)))

    def __truediv__(self, other: Dimension) -> Dimension:
        if not isinstance(other, Dimension):
            return NotImplemented
        return Dimension(tuple(a - b for a, b in zip(self.exps, other.exps, strict=True)))

    def __pow__(self, power: int | Fraction) -> Dimension:
        if isinstance(power, bool) or not isinstance(power, (int, Fraction)):
            return NotImplemented
        return Dimension(tuple(e * power for e in self.exps))

    @property
    def is_dimensionless(self) -> bool:
        """True when every exponent is zero (a pure number)."""
        return not any(self.exps)

    def __str__(self) -> str:
        if self in _NAME_OF:
            return _NAME_OF[self]
        for name in _POWER_BASES:
            for p in (2, 3, -1, -2, Fraction(1, 2), Fraction(-1, 2)):
                if _DIM_OF[name] ** p == self:
                    return f"{name}^{_exp_text(p)}"
        return " ".join(s if e == 1 else f"{s}^{_exp_text(e)}"
                        for s, e in zip(_BASE_SYMBOLS, self.exps, strict=True) if e)

    def __repr__(self) -> str:
        return f"Dimension({str(self)!r})"


def _d(m=0, kg=0, s=0, amp=0, kelvin=0, mol=0, cd=0) -> Dimension:
    return Dimension((m, kg, s, amp, kelvin, mol, cd))


DIMENSIONLESS = _d()
_V, _S, _A, _M = _d(2, 1, -3, -1), _d(s=1), _d(amp=1), _d(1)
_G, _F = _d(-2, -1, 3, 2), _d(-2, -1, 4, 2)  # siemens, farad
# Names for printing dimensions, tried in this order: the first exact match wins.
_DIM_OF: dict[str, Dimension] = {
    "1": DIMENSIONLESS, "volt": _V, "amp": _A, "second": _S, "siemens": _G, "farad": _F,
    "ohm": _V / _A, "hertz": _d(s=-1), "coulomb": _A * _S, "watt": _V * _A, "joule": _V * _A * _S,
    "newton": _d(1, 1, -2), "pascal": _d(-1, 1, -2), "henry": _V * _S / _A, "weber": _V * _S,
    "tesla": _d(kg=1, s=-2, amp=-1), "metre": _M, "kilogram": _d(kg=1), "kelvin": _d(kelvin=1),
    "mole": _d(mol=1), "candela": _d(cd=1), "mole/metre^3": _d(-3, mol=1), "volt/second": _V / _S,
    "amp/second": _A / _S, "siemens/second": _G / _S, "amp/metre^2": _A / _M**2,
    "siemens/metre^2": _G / _M**2, "farad/metre^2": _F / _M**2, "ohm metre": _V / _A * _M,
}
_NAME_OF = {dim: name for name, dim in reversed(_DIM_OF.items())}
_POWER_BASES = ("volt", "second", "amp", "metre", "siemens", "farad", "ohm", "kilogram")

# Long names, short symbol, power of ten of the unprefixed unit in SI, and its dimension when
# that is not the one named like the first long name.
_UNITS = [("metre meter", "m", 0), ("gram", "g", -3, _d(kg=1)), ("second", "s", 0),
          ("amp ampere", "A", 0), ("kelvin", "K", 0), ("mole", "mol", 0), ("candela", "cd", 0),
          ("volt", "V", 0), ("hertz", "Hz", 0), ("siemens", "S", 0), ("farad", "F", 0),
          ("ohm", "Ω", 0), ("coulomb", "C", 0), ("watt", "W", 0), ("joule", "J", 0),
          ("newton", "N", 0), ("pascal", "Pa", 0), ("henry", "H", 0), ("weber", "Wb", 0),
          ("tesla", "T", 0), ("litre liter", "L", -3, _M**3), ("molar", "M", 3, _d(-3, mol=1))]
_PREFIXES = {"y": -24, "z": -21, "a": -18, "f": -15, "p": -12, "n": -9, "u": -6, "µ": -6,
             "μ": -6, "m": -3, "c": -2, "d": -1, "k": 3, "M": 6, "G": 9, "T": 12}
# Short forms usable inside equations: only these prefixes per symbol, so that names such as
# 'fs', 'dm' or 'Ts' stay free for variables. Single letters are never units in equations.
_EXPR_SHORT = {"V": "pnuµμmkM", "A": "fpnuµμmk", "s": "pnuµμm", "S": "pnuµμm", "F": "fpnuµμm",
               "Hz": "mkMG", "Ω": "mkMG", "m": "nuµμmck", "g": "uµμmk", "mol": "pnuµμm",
               "M": "pnuµμm", "L": "uµμm"}

_PARSE_UNITS: dict[str, tuple[int, Dimension]] = {"kilogram": (0, _d(kg=1))}
_expr_names = {"kilogram", "Hz", "mol"}
for _longs, _short, _p10, *_dims in _UNITS:
    _dim = _dims[0] if _dims else _DIM_OF[_longs.split()[0]]
    for _name in (*_longs.split(), _short):
        _PARSE_UNITS[_name] = (_p10, _dim)
        for _prefix, _pp in _PREFIXES.items():  # no two spellings collide (a test checks)
            _PARSE_UNITS.setdefault(_prefix + _name, (_p10 + _pp, _dim))
    for _long in _longs.split():
        # 'c' and 'd' only for lengths and volumes: 'damp' or 'camp' would shadow variables.
        _expr_names.update(p + _long for p in ("", *_PREFIXES)
                           if p not in ("c", "d") or _short in ("m", "L"))
    _expr_names.update(p + _short for p in _EXPR_SHORT.get(_short, ""))

UNIT_NAMES: frozenset[str] = frozenset(_expr_names)
"""Every name that means a unit inside an equation expression (``mV``, ``ms``, ``msecond`` ...)."""
# Rare spellings such as 'yHz' would make odd suggestions for typos: propose common ones only.
_SUGGESTIONS = UNIT_NAMES | {n for longs, short, *_ in _UNITS for n in (*longs.split(), short)}


def _nfkc(name: str) -> str:
    # Python's parser folds identifiers with NFKC ('µ' MICRO SIGN becomes Greek 'μ').
    return unicodedata.normalize("NFKC", name)


def is_unit_name(name: str) -> bool:
    """Whether ``name`` is a unit inside an equation expression.

    Single letters and other likely variable names are not, even where :func:`parse_unit`
    accepts them.

    >>> is_unit_name("mV"), is_unit_name("msecond"), is_unit_name("m"), is_unit_name("fs")
    (True, True, False, False)
    """
    return name in UNIT_NAMES or _nfkc(name) in UNIT_NAMES


def unit_symbol(name: str) -> tuple[float, Dimension]:
    """Scale to SI and dimension of the unit name ``name`` (one of :data:`UNIT_NAMES`).

    >>> unit_symbol("ms")
    (0.001, Dimension('second'))
    >>> unit_symbol("v")
    Traceback (most recent call last):
    KeyError: "'v' is not a unit name"
    """
    if not is_unit_name(name):
        raise KeyError(f"{name!r} is not a unit name")
    p10, dim = _PARSE_UNITS[_nfkc(name)]
    return float(Fraction(10) ** p10), dim


def _suggest(name: str) -> str:
    same = sorted(n for n in _PARSE_UNITS if n.lower() == name.lower())
    if same:  # 'v' for 'V', 'hz' for 'Hz': difflib scores case slips too low to propose
        return " Did you mean " + " or ".join(repr(n) for n in same[:3]) + "?"
    return did_you_mean(name, _SUGGESTIONS)


def _evaluate(text: str, where: str | None, start: int = 0,
              factor: Fraction = Fraction(1)) -> tuple[float, Dimension]:
    """Read ``factor * text[start:]`` as numbers and units; carets point into ``text``."""
    body = text[start:]
    src = body.strip()
    lead = start + len(body) - len(body.lstrip())

    def col(offset: int) -> int:  # ast offsets count UTF-8 bytes, carets count characters
        return lead + len(src.encode()[:offset].decode(errors="ignore"))

    def fail(message: str, node: ast.AST) -> UnitError:
        first, last = col(node.col_offset), col(node.end_col_offset)
        return UnitError(message, text, first, max(last - first, 1), where)

    if not src:
        raise UnitError("expected a unit, e.g. 'mV' or 'volt/second'", text, lead, 1, where)
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as err:
        raise UnitError(f"cannot read {src!r} as a unit: {err.msg}", text,
                        lead + max((err.offset or 1) - 1, 0), 1, where) from None
    except (RecursionError, MemoryError):  # Python's parser has depth limits of its own
        raise UnitError(f"{src[:40]!r}... is too long or too deeply nested to read as a "
                        "quantity", text, lead, len(src), where) from None

    def leaf(node: ast.AST) -> tuple[Fraction | float, Dimension]:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            value = node.value
            if not abs(value) <= FLOAT_MAX:  # 1e309 reads as infinity; a long 0x... literal
                literal = text[col(node.col_offset):col(node.end_col_offset)]
                raise fail(f"{literal[:40]!r} is too large for a 64-bit float (at most about "
                           "1.8e308)", node)
            # repr() is the literal's shortest decimal, so '1.62*mV' gives exactly 0.00162.
            return Fraction(repr(value)), DIMENSIONLESS
        if isinstance(node, ast.Name):
            if node.id == "pi":
                return math.pi, DIMENSIONLESS
            if _nfkc(node.id) not in _PARSE_UNITS:
                typed = text[col(node.col_offset):col(node.end_col_offset)]  # before NFKC
                raise fail(f"unknown unit {typed!r}.{_suggest(typed)}", node)
            p10, dim = _PARSE_UNITS[_nfkc(node.id)]
            return Fraction(10) ** p10, dim
        raise fail(f"unsupported syntax in {src!r}: write units with numbers, unit names, "
                   "*, /, ** and parentheses", node)

    def binary(node: ast.BinOp, a, da, b, db) -> tuple[Fraction | float, Dimension]:
        if isinstance(node.op, ast.Mult):
            return a * b, da * db
        if isinstance(node.op, ast.Div):
            return a / b, da / db
        if isinstance(node.op, (ast.Add, ast.Sub)):
            if da != db:
                raise fail(f"cannot add {_dname(da)} and {_dname(db)}", node)
            return (a + b if isinstance(node.op, ast.Add) else a - b), da
        if isinstance(node.op, ast.Pow):
            if not db.is_dimensionless:
                raise fail(f"an exponent must be dimensionless, not {db}", node.right)
            if not da.is_dimensionless and not isinstance(b, Fraction):
                raise fail("a unit can only be raised to a rational power", node.right)
            if not pow_in_range(a, b):
                raise fail(POW_RANGE, node)
            exact = isinstance(a, Fraction) and isinstance(b, Fraction) and b.denominator == 1
            value = a ** int(b) if exact else float(a) ** float(b)
            if isinstance(value, complex):
                raise fail("this power is not a real number", node)
            return value, (da ** b if not da.is_dimensionless else DIMENSIONLESS)
        hint = "; use ** for powers" if isinstance(node.op, ast.BitXor) else ""
        raise fail(f"unsupported operator in {src!r}{hint}", node)

    def ev(node: ast.AST, depth: int = 0) -> tuple[Fraction | float, Dimension]:
        # runs of signs and chains such as a*b/c or a+b-c are loops here, not recursion (a
        # long product is not a deep one); every other level counts against MAX_DEPTH
        if depth > MAX_DEPTH:
            raise fail(f"nested more than {MAX_DEPTH} levels deep", node)
        negate = False
        while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            negate ^= isinstance(node.op, ast.USub)
            node = node.operand
        chain = []
        while isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Pow):
            chain.append(node)
            node = node.left
        if isinstance(node, ast.BinOp):  # a power
            value, dim = binary(node, *ev(node.left, depth + 1), *ev(node.right, depth + 1))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value, dim = ev(node, depth + 1)
        else:
            value, dim = leaf(node)
        for op in reversed(chain):
            value, dim = binary(op, value, dim, *ev(op.right, depth + 1))
        return (-value if negate else value), dim

    try:  # exact Fractions until here: the one rounding to float happens last
        value, dim = ev(tree.body)
        return float(factor * value), dim
    except (ZeroDivisionError, OverflowError) as err:
        why = "division by zero" if isinstance(err, ZeroDivisionError) else "too large"
        raise UnitError(f"cannot compute {src!r}: {why}", text, lead, len(src), where) from None


def parse_unit(text: str, *, where: str | None = None) -> tuple[float, Dimension]:
    """Scale to SI and dimension of a unit such as ``"mV"``, ``"volt/second"`` or ``"cm**2"``.

    Parameters
    ----------
    text : str
        Short symbols (``mV``, ``nA``, ``kHz``, ``Mohm``, ``mM``, also ``V``, ``s``, ``m``),
        Brian2 long names (``mvolt``, ``msecond``, ``namp``) with SI prefixes, combined with
        ``*``, ``/``, ``**`` and numbers; ``"1"`` is dimensionless.
    where : str, optional
        Prefix of error messages, e.g. the model's name.

    Returns
    -------
    (float, Dimension)
        The unit's value in SI base units and its dimension.

    Raises
    ------
    UnitError
        Unknown unit (with suggestions and a caret under it) or unsupported syntax.

    Examples
    --------
    >>> parse_unit("kHz")
    (1000.0, Dimension('hertz'))
    >>> parse_unit("mV/ms") == parse_unit("volt/second")
    True
    >>> parse_unit("mVV")
    Traceback (most recent call last):
    snngen.errors.UnitError: unknown unit 'mVV'. Did you mean 'mV'?
        mVV
        ^^^
    """
    return _evaluate(text, where)


# The atomic group keeps '3e-3 * s' from being re-read as the number 3 times a unit 'e'.
_NUMBER_THEN_UNIT = re.compile(r"\s*((?>[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?))"
                               r"\s*(?=[^\W\d])")


def split_number(text: str) -> tuple[str, int, int] | None:
    """The number a quantity string starts with when a unit follows without ``*``, as in
    ``"20 ms"`` or ``"5Hz"``: ``(number, its column, the unit's column)``, else None.

    >>> split_number("20 ms"), split_number("20*ms"), split_number("tref")
    (('20', 0, 3), None, None)
    """
    match = _NUMBER_THEN_UNIT.match(text)
    return (match.group(1), match.start(1), match.end()) if match else None


def parse_quantity(value, *,
                   where: str | None = None) -> tuple[float | np.ndarray, Dimension | None]:
    """SI value and dimension of a parameter value.

    Parameters
    ----------
    value : float, int, numpy array or str
        Numbers and arrays have an unknown dimension (``None``: never checked). Strings are
        read with their units: ``"20*ms"``, ``"20 ms"``, ``"-49 mV"``, ``"10*mV/ms"``; a
        string without units, such as ``"0.5"``, is dimensionless.
    where : str, optional
        Prefix of error messages.

    Returns
    -------
    (float or numpy.ndarray, Dimension or None)
        The value in SI base units and its dimension.

    Raises
    ------
    UnitError
        A string that is not a quantity, or a value of another type.
    InvalidValueError
        An integer too large for a 64-bit float (``10**400``).

    Examples
    --------
    >>> parse_quantity("20 ms"), parse_quantity("1.62*mV"), parse_quantity(0.5)
    ((0.02, Dimension('second')), (0.00162, Dimension('volt')), (0.5, None))
    >>> parse_quantity("10*mV/ms")
    (10.0, Dimension('volt/second'))
    """
    if isinstance(value, str):
        number = split_number(value)
        if number:  # '20 ms' and '5Hz' mean '20*(ms)' and '5*(Hz)'
            return _evaluate(value, where, number[2], Fraction(number[0].replace("_", "")))
        return _evaluate(value, where)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        try:
            return float(value), None
        except OverflowError:  # 10**400: a Python int has no upper bound, a float64 has
            raise InvalidValueError(f"{where + ': ' if where else ''}{shown(value)} is too "
                                    "large for a 64-bit float (at most about 1.8e308)") from None
    if isinstance(value, (np.ndarray, list, tuple)):
        array = np.asarray(value)
        if array.dtype.kind in "iuf":
            return array.astype(float), None
    raise UnitError(f"cannot read a quantity from {shown(value)} ({type(value).__name__}); "
                    "give a number, an array or a string such as '20*ms'", where=where)


def _dname(dim: Dimension) -> str:
    return "dimensionless" if dim.is_dimensionless else str(dim)


from snngen.dimensions import check_equal, dimension_of  # noqa: E402 - re-exported
