"""The strict Numba printer: printed code evaluates to the expression's value."""

import math

import numpy as np
import pytest
import sympy as sp

import snngen as sg
from snngen.backends.numba.printer import NumbaPrinter, NumpyConstPrinter
from snngen.integrate import exprel

x, y, z = sp.symbols("x y z", real=True)
EXPRESSIONS = [
    x / y**2, -x * z / y**2, x / y**3 + 1 / y, x**-1 * z, (x + y) ** 2 / (z - 1) ** 4,
    sp.exp(-x / y) * sp.sqrt(z), sp.Max(x, y) - sp.Min(y, z), sp.Abs(x - z) ** 3,
    sp.Piecewise((x, x > y), (y * z, True)), exprel(x * y), sp.tanh(x) / sp.log(z),
    x ** sp.Rational(3, 2), 2 ** (x / y), (10 * sp.Abs(x) + 1) ** -2, (x + y) ** -3 * z,
]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=str)
def test_printed_code_evaluates_like_sympy(expr):
    env = {"x": 0.7, "y": 1.3, "z": 2.1}
    expected = float(expr.subs({x: 0.7, y: 1.3, z: 2.1}).evalf() if not expr.has(exprel) else
                     math.expm1(0.7 * 1.3) / (0.7 * 1.3))
    ns = {"math": math, "np": np, "_f": np.float64, "_exprel":
          lambda v: math.expm1(v) / v, "_np_exprel": lambda v: np.expm1(v) / v, **env}
    for printer in (NumbaPrinter("float64"), NumpyConstPrinter()):
        assert eval(printer.doprint(expr), ns) == pytest.approx(expected, rel=1e-12)


def test_unsupported_function_is_an_error_not_a_comment():
    with pytest.raises(sg.BackendUnsupported, match="besselj"):
        NumbaPrinter("float64").doprint(sp.besselj(0, x))


def test_c_printer_gives_sqrt_and_pow_real_arguments():
    """sqrt(2) of an integer matches several overloads under NVRTC (a network's noise
    coefficient sigma*sqrt(2/tau) failed to compile): integers print as real literals."""
    import sympy as sp

    from snngen.backends.cuda.printer import CPrinter
    x = sp.Symbol("x", real=True)
    assert "sqrt(2.0)" in CPrinter("float64").doprint(sp.sqrt(2) * x)
    assert "sqrtf(2.0f)" in CPrinter("float32").doprint(sp.sqrt(2) * x)
    assert "pow(3.0, x)" in CPrinter("float64").doprint(3 ** x)
