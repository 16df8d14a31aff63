"""Strict sympy -> C expression printer for the CUDA kernels (and their host emulation).

Every literal and every function carries the program's precision: in float32 programs
``0.5`` prints as ``0.5f`` and ``exp`` as ``expf``, so nothing is silently promoted to double
(a promoted expression is 2-32x slower on most GPUs). Anything the kernels do not support
raises :class:`~snngen.errors.BackendUnsupported` naming it.

>>> import sympy as sp
>>> v, tau = sp.symbols("v tau", real=True)
>>> CPrinter("float32").doprint(sp.exp(-v / tau) + v**2)
'(v*v) + expf(-v/tau)'
>>> CPrinter("float64").doprint(sp.Float(0.5) * v)
'0.5*v'
>>> CPrinter("float32").doprint(sp.Piecewise((v, v > 1), (0, True)))
'(((v > 1)) ? (v) : (0))'
>>> CPrinter("float32").doprint(-sp.oo * v)  # no INFINITY macro under NVRTC
'-(1.0f/0.0f)*v'
"""

from __future__ import annotations

import math

import sympy as sp
from sympy.printing.c import C99CodePrinter

from ...errors import BackendUnsupported

_FUNCS = ("exp", "log", "sin", "cos", "tan", "tanh", "sinh", "cosh", "floor", "ceil", "expm1",
          "sqrt", "fabs", "pow", "fmin", "fmax", "trunc")


class CPrinter(C99CodePrinter):
    """Print expressions for generated CUDA C in ``float`` or ``double``."""

    printmethod = "_snngen_cuda"

    def __init__(self, dtype: str = "float32"):
        super().__init__({"strict": True})
        self.dtype = dtype
        self.single = dtype == "float32"

    # -- literals ---------------------------------------------------------------------------
    def _lit(self, x: float) -> str:
        x = float(x)
        if not math.isfinite(x):
            # NVRTC has no INFINITY or NAN macros (no <math.h>) and __builtin_inff is g++
            # only: a constant division is an IEEE infinity or NaN for both compilers
            one = "1.0f" if self.single else "1.0"
            zero = "0.0f" if self.single else "0.0"
            text = f"{zero}/{zero}" if math.isnan(x) else f"{one}/{zero}"
            return f"(-({text}))" if x < 0 else f"({text})"
        text = repr(x)
        if "e" not in text and "." not in text:
            text += ".0"
        return text + ("f" if self.single else "")

    def _print_Float(self, expr):
        return self._lit(float(expr))

    def _print_Rational(self, expr):
        return self._lit(float(expr))

    def _print_Half(self, expr):
        return self._lit(0.5)

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Exp1(self, expr):
        return self._lit(2.718281828459045)

    def _print_Pi(self, expr):
        return self._lit(3.141592653589793)

    def _print_Infinity(self, expr):
        return self._lit(math.inf)

    def _print_NegativeInfinity(self, expr):
        return self._lit(-math.inf)

    def _print_NaN(self, expr):
        return self._lit(math.nan)

    def _print_ComplexInfinity(self, expr):
        raise BackendUnsupported("the CUDA backend cannot print 1/0 (complex infinity)")

    def _print_Symbol(self, expr):
        return expr.name

    def _print_BooleanTrue(self, expr):
        return "true"

    def _print_BooleanFalse(self, expr):
        return "false"

    # -- functions --------------------------------------------------------------------------
    def _fn(self, name: str) -> str:
        return name + "f" if self.single else name

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        b = self.parenthesize(base, 100)
        if exp == sp.Rational(1, 2):  # sqrt(2) of an integer is ambiguous under NVRTC
            return f"{self._fn('sqrt')}({self._real(base)})"
        if exp.is_Integer and 1 <= int(exp) <= 4:
            return "(" + "*".join([b] * int(exp)) + ")" if int(exp) > 1 else b
        if exp == -1:
            return f"({self._lit(1)}/{b})"
        if exp.is_Integer and -4 <= int(exp) <= -2:
            return f"({self._lit(1)}/({'*'.join([b] * -int(exp))}))"
        return f"{self._fn('pow')}({self._real(base)}, {self._real(exp)})"

    def _print_Function(self, expr):
        name = type(expr).__name__
        table = {"ceiling": "ceil"}
        # each argument is printed once: printing it twice doubles the work per nesting level
        if name in _FUNCS or name in table:
            args = ", ".join(self._real(a) for a in expr.args)
            return f"{self._fn(table.get(name, name))}({args})"
        if name == "exprel":
            return f"snn_exprel({', '.join(self._print(a) for a in expr.args)})"
        if getattr(type(expr), "surrogate", None) or getattr(type(expr), "derivative_of", None):
            raise BackendUnsupported("surrogate-gradient kernels are not available on the CUDA "
                                     "backend yet; train with backend='numba'")
        raise BackendUnsupported(f"the CUDA backend cannot print function '{name}'")

    def _print_Abs(self, expr):
        return f"{self._fn('fabs')}({self._print(expr.args[0])})"

    def _print_sign(self, expr):
        x = self._print(expr.args[0])
        return f"(({x} > 0) - ({x} < 0))"

    def _real(self, a) -> str:
        """An argument of a floating-point function: integers print as real literals, since
        ``fmax(0, x)`` picks the host-only ``std::fmax`` overload under nvcc."""
        return self._lit(float(a)) if a.is_Integer else self._print(a)

    def _print_Min(self, expr):
        out = self._real(expr.args[0])
        for a in expr.args[1:]:
            out = f"{self._fn('fmin')}({out}, {self._real(a)})"
        return out

    def _print_Max(self, expr):
        out = self._real(expr.args[0])
        for a in expr.args[1:]:
            out = f"{self._fn('fmax')}({out}, {self._real(a)})"
        return out

    def _print_Piecewise(self, expr):
        *cases, (last, cond) = expr.args
        if cond is not sp.true:
            raise BackendUnsupported("a Piecewise without a final 'otherwise' branch")
        out = self._print(last)
        for e, c in reversed(cases):
            out = f"(({self._print(c)}) ? ({self._print(e)}) : ({out}))"
        return out

    def _print_Relational(self, expr):
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_And(self, expr):
        return "(" + " && ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " || ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr):
        return f"(!{self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        x = self._print(expr.args[0])
        return f"(({x} > 0) ? {self._lit(1)} : {self._lit(0)})"

    def emptyPrinter(self, expr):  # noqa: N802 - sympy's name
        raise BackendUnsupported(f"the CUDA backend cannot print {type(expr).__name__}")

    def _print_not_supported(self, expr):
        raise BackendUnsupported(f"the CUDA backend cannot print {type(expr).__name__}")


def _route(cls):
    for name in ("exp", "log", "sin", "cos", "tan", "tanh", "sinh", "cosh", "floor", "ceiling",
                 "expm1", "sqrt", "trunc"):
        setattr(cls, f"_print_{name}", cls._print_Function)


_route(CPrinter)
