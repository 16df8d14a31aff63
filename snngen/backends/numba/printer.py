"""Strict sympy -> Python/Numba expression printer.

Prints only what the Numba kernels support; anything else raises
:class:`~snngen.errors.BackendUnsupported` naming the function, never a comment in code.

>>> import sympy as sp
>>> v, tau = sp.symbols("v tau", real=True)
>>> NumbaPrinter("float64").doprint(sp.exp(-v / tau) + v**2)
'(v*v) + math.exp(-v/tau)'
>>> NumbaPrinter("float32").doprint(sp.Float(0.5) * v)
'_f(0.5)*v'
>>> NumbaPrinter("float32").doprint(10 * abs(v) - 1)  # no int: it would promote to float64
'_f(10.0)*abs(v) - _f(1.0)'
>>> NumbaPrinter("float64").doprint(sp.oo * v)  # names that exist in generated code
'math.inf*v'
"""

from __future__ import annotations

import math

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ...errors import BackendUnsupported

_MATH = {"exp": "math.exp", "log": "math.log", "sin": "math.sin", "cos": "math.cos",
         "tan": "math.tan", "tanh": "math.tanh", "sinh": "math.sinh", "cosh": "math.cosh",
         "floor": "math.floor", "ceiling": "math.ceil", "expm1": "math.expm1",
         "trunc": "np.trunc",
         "exprel": "_exprel"}
_NON_FINITE = {"inf": "math.inf", "-inf": "-math.inf", "nan": "math.nan"}


class NumbaPrinter(PythonCodePrinter):
    """Print expressions for generated Numba code; floats are cast to the program dtype."""

    printmethod = "_snngen_numba"

    def __init__(self, dtype: str = "float32"):
        super().__init__({"fully_qualified_modules": False, "strict": True})
        self.dtype = dtype

    def _print_Float(self, expr):
        value = float(expr)
        # repr() of an infinity is 'inf', a name that does not exist in generated code
        text = repr(value) if math.isfinite(value) else _NON_FINITE[str(value)]
        return f"_f({text})" if self.dtype == "float32" else text

    def _print_Infinity(self, expr):
        return self._print_Float(sp.Float("inf"))

    def _print_NegativeInfinity(self, expr):
        return self._print_Float(sp.Float("-inf"))

    def _print_NaN(self, expr):
        return self._print_Float(sp.Float("nan"))

    def _print_ComplexInfinity(self, expr):
        raise BackendUnsupported("the Numba backend cannot print 1/0 (complex infinity)")

    def _print_Rational(self, expr):
        return self._print_Float(sp.Float(expr))

    def _print_Half(self, expr):
        return self._print_Float(sp.Float(0.5))

    def _print_Integer(self, expr):
        # in float32 code an int literal would promote float32 arithmetic to float64
        if self.dtype != "float32":
            return str(int(expr))
        return f"-_f({-int(expr)}.0)" if expr < 0 else f"_f({int(expr)}.0)"

    def _print_Exp1(self, expr):
        return "math.e"

    def _print_Pi(self, expr):
        return "math.pi"

    def _print_Symbol(self, expr):
        return expr.name

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        b = self.parenthesize(base, 100)
        if exp == sp.Rational(1, 2):
            return f"math.sqrt({self._print(base)})"
        # parenthesised: the Mul printer may put this after a "/" (x/y**2 -> x/(y*y))
        if exp.is_Integer and 1 <= int(exp) <= 4:
            return "(" + "*".join([b] * int(exp)) + ")" if int(exp) > 1 else b
        if exp == -1:
            return f"({self._print_Float(sp.Float(1))}/{b})"
        if exp.is_Integer and -4 <= int(exp) <= -2:  # surrogates: (beta|g| + 1)**-2
            return f"({self._print_Float(sp.Float(1))}/({'*'.join([b] * -int(exp))}))"
        if exp.is_Integer:  # an integer power stays an integer power
            return f"{b}**({int(exp)})"
        return f"{b}**{self.parenthesize(exp, 100)}"

    def _print_Function(self, expr):
        name = type(expr).__name__
        if name in _MATH:
            return f"{_MATH[name]}({', '.join(self._print(a) for a in expr.args)})"
        if getattr(type(expr), "derivative_of", None):  # H'(g): one helper, with the cut-off
            return f"_sg({self._print(expr.args[0])}, cutoff)"
        if getattr(type(expr), "surrogate", None):  # the spike step H(g) of snngen.derive
            one, zero = self._print_Float(sp.Float(1)), self._print_Float(sp.Float(0))
            return f"({one} if {self._print(expr.args[0])} > 0 else {zero})"
        raise BackendUnsupported(f"the Numba backend cannot print function '{name}'")

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_sign(self, expr):
        return f"np.sign({self._print(expr.args[0])})"

    def _print_Min(self, expr):
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            out = f"min({out}, {self._print(a)})"
        return out

    def _print_Max(self, expr):
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            out = f"max({out}, {self._print(a)})"
        return out

    def _print_Piecewise(self, expr):
        *cases, (last, cond) = expr.args
        out = self._print(last)
        if cond is not sp.true:
            raise BackendUnsupported("a Piecewise without a final 'otherwise' branch")
        for e, c in reversed(cases):
            out = f"({self._print(e)} if {self._print(c)} else {out})"
        return out

    def _print_Relational(self, expr):
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_And(self, expr):
        return "(" + " and ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " or ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr):
        return f"(not {self._print(expr.args[0])})"

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"

    def _print_Heaviside(self, expr):
        x = self._print(expr.args[0])
        return f"(1.0 if {x} > 0 else 0.0)"

    def emptyPrinter(self, expr):  # noqa: N802 - sympy's name
        raise BackendUnsupported(f"the Numba backend cannot print {type(expr).__name__}")

    def _print_not_supported(self, expr):
        raise BackendUnsupported(f"the Numba backend cannot print {type(expr).__name__}")


class NumpyConstPrinter(NumbaPrinter):
    """Prints loop-invariant constants for numpy (arrays of per-neuron parameters)."""

    def __init__(self):
        super().__init__("float64")

    def _print_Function(self, expr):
        name = type(expr).__name__
        table = {"exp": "np.exp", "log": "np.log", "sin": "np.sin", "cos": "np.cos",
                 "tanh": "np.tanh", "expm1": "np.expm1", "exprel": "_np_exprel",
                 "floor": "np.floor", "ceiling": "np.ceil", "tan": "np.tan", "trunc": "np.trunc",
                 "sinh": "np.sinh", "cosh": "np.cosh"}
        if name in table:
            return f"{table[name]}({', '.join(self._print(a) for a in expr.args)})"
        raise BackendUnsupported(f"cannot evaluate function '{name}' in a constant")

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == sp.Rational(1, 2):
            return f"np.sqrt({self._print(base)})"
        return f"{self.parenthesize(base, 100)}**{self.parenthesize(exp, 100)}"

    def _print_Abs(self, expr):
        return f"np.abs({self._print(expr.args[0])})"

    def _print_Min(self, expr):
        return f"np.minimum.reduce([{', '.join(self._print(a) for a in expr.args)}])"

    def _print_Max(self, expr):
        return f"np.maximum.reduce([{', '.join(self._print(a) for a in expr.args)}])"

    def _print_Piecewise(self, expr):
        *cases, (last, cond) = expr.args
        out = self._print(last)
        for e, c in reversed(cases):
            out = f"np.where({self._print(c)}, {self._print(e)}, {out})"
        return out

    def _print_And(self, expr):
        return "(" + " & ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " | ".join(self._print(a) for a in expr.args) + ")"


def _route_known_functions(cls):
    # PythonCodePrinter has its own printers for well-known functions; route them through
    # our tables so every function printed is one we chose.
    for name in ("exp", "log", "sin", "cos", "tan", "tanh", "sinh", "cosh", "floor", "ceiling",
                 "expm1"):
        setattr(cls, f"_print_{name}", cls._print_Function)


_route_known_functions(NumbaPrinter)
_route_known_functions(NumpyConstPrinter)
