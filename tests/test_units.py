"""Tests of snngen.units: unit parsing, quantities and dimension inference."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy

from snngen.errors import EquationError, UnitError
from snngen.units import (
    DIMENSIONLESS,
    UNIT_NAMES,
    Dimension,
    check_equal,
    dimension_of,
    is_unit_name,
    parse_quantity,
    parse_unit,
    unit_symbol,
)

VOLT = parse_unit("volt")[1]
SECOND = parse_unit("second")[1]
AMP = parse_unit("amp")[1]
v, El, taum, ge, gi, w = sympy.symbols("v El taum ge gi w")
DIMS = {v: VOLT, El: VOLT, ge: VOLT, gi: VOLT, taum: SECOND, w: None}


# --- Dimension ----------------------------------------------------------------------------------

def test_dimension_algebra_and_normalisation():
    assert Dimension((2, 1, -3, -1, 0, 0, 0)) == VOLT
    assert DIMENSIONLESS == VOLT / VOLT and DIMENSIONLESS.is_dimensionless
    assert not VOLT.is_dimensionless
    assert (VOLT ** 2) ** Fraction(1, 2) == VOLT
    assert Dimension((Fraction(2, 1), 1, -3, -1, 0, 0, 0)).exps == (2, 1, -3, -1, 0, 0, 0)
    assert hash(Dimension((Fraction(1), 0, 0, 0, 0, 0, 0))) == hash(parse_unit("m")[1])
    with pytest.raises(ValueError):
        Dimension((1, 2))


@pytest.mark.parametrize(("unit", "text"), [
    ("volt", "volt"), ("second", "second"), ("1", "1"), ("amp", "amp"), ("siemens", "siemens"),
    ("farad", "farad"), ("ohm", "ohm"), ("Hz", "hertz"), ("1/second", "hertz"),
    ("mV/ms", "volt/second"), ("nA/ms", "amp/second"), ("nS/ms", "siemens/second"),
    ("amp*second", "coulomb"), ("volt*amp", "watt"), ("mM", "mole/metre^3"), ("cm**2", "metre^2"),
    ("mV**2", "volt^2"), ("m/s**3", "m s^-3"), ("uF/cm**2", "farad/metre^2"),
])
def test_dimension_str_is_readable(unit, text):
    assert str(parse_unit(unit)[1]) == text


def test_dimension_str_of_fractional_and_odd_dims():
    assert str(SECOND ** Fraction(-1, 2)) == "second^(-1/2)"
    assert str(Dimension((1, 0, 0, 0, 1, 0, 0))) == "m K"
    assert repr(VOLT) == "Dimension('volt')"


# --- parse_unit ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "scale", "dim"), [
    ("volt", 1.0, "volt"), ("V", 1.0, "volt"), ("mV", 1e-3, "volt"), ("mvolt", 1e-3, "volt"),
    ("ms", 1e-3, "second"), ("msecond", 1e-3, "second"), ("second", 1.0, "second"),
    ("s", 1.0, "second"), ("us", 1e-6, "second"), ("µs", 1e-6, "second"),
    ("μs", 1e-6, "second"), ("Hz", 1.0, "hertz"), ("kHz", 1e3, "hertz"),
    ("nA", 1e-9, "amp"), ("pA", 1e-12, "amp"), ("amp", 1.0, "amp"), ("A", 1.0, "amp"),
    ("namp", 1e-9, "amp"), ("nS", 1e-9, "siemens"), ("uS", 1e-6, "siemens"),
    ("nsiemens", 1e-9, "siemens"), ("siemens", 1.0, "siemens"), ("S", 1.0, "siemens"),
    ("pF", 1e-12, "farad"), ("pfarad", 1e-12, "farad"), ("farad", 1.0, "farad"),
    ("F", 1.0, "farad"), ("Mohm", 1e6, "ohm"), ("kohm", 1e3, "ohm"), ("ohm", 1.0, "ohm"),
    ("kΩ", 1e3, "ohm"), ("metre", 1.0, "metre"), ("meter", 1.0, "metre"), ("m", 1.0, "metre"),
    ("um", 1e-6, "metre"), ("umetre", 1e-6, "metre"), ("cm", 1e-2, "metre"),
    ("gram", 1e-3, "kilogram"), ("kg", 1.0, "kilogram"), ("mol", 1.0, "mole"),
    ("mM", 1.0, "mole/metre^3"), ("1", 1.0, "1"), ("mV/ms", 1.0, "volt/second"),
    ("volt/second", 1.0, "volt/second"), ("1/second", 1.0, "hertz"), ("amp*ohm", 1.0, "volt"),
    ("second**-1", 1.0, "hertz"), ("cm**2", 1e-4, "metre^2"), ("(mV*ms/ms)**2", 1e-6, "volt^2"),
])
def test_parse_unit_forms_and_scales(text, scale, dim):
    got_scale, got_dim = parse_unit(text)
    assert got_scale == pytest.approx(scale, rel=1e-15) and str(got_dim) == dim


def test_parse_unit_equivalences():
    assert parse_unit("mV")[1] == parse_unit("volt")[1] and parse_unit("mV")[0] == 1e-3
    assert parse_unit("mV/ms") == parse_unit("volt/second")
    assert parse_unit("amp*ohm") == parse_unit("volt")
    assert parse_unit("1") == (1.0, DIMENSIONLESS)
    assert parse_unit("  mV  ") == parse_unit("mV")


def test_unknown_unit_suggests_and_points_at_the_name():
    with pytest.raises(UnitError) as info:
        parse_unit("mV/msec")
    message = str(info.value)
    assert "unknown unit 'msec'" in message and "Did you mean" in message and "'ms'" in message
    line, caret = message.splitlines()[-2:]
    assert line == "    mV/msec" and caret == "       ^^^^"
    assert isinstance(info.value, EquationError)


def test_unknown_unit_case_slip_is_suggested():
    with pytest.raises(UnitError, match=r"Did you mean 'Hz'\?"):
        parse_unit("hz")


@pytest.mark.parametrize("text", ["", "mV^2", "f(mV)", "mV +", "ms**mV", "ms**pi", "1/0",
                                  "mV + ms", "'mV'", "(-1)**0.5"])
def test_bad_units_raise_unit_error(text):
    with pytest.raises(UnitError):
        parse_unit(text)


def test_parse_unit_where_prefix():
    with pytest.raises(UnitError, match=r"^neuron 'E': unknown unit"):
        parse_unit("vlot", where="neuron 'E'")


# --- parse_quantity -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value", "dim"), [
    ("20*ms", 0.02, "second"), ("20 ms", 0.02, "second"), ("20ms", 0.02, "second"),
    ("-49 mV", -0.049, "volt"), ("-49*mV", -0.049, "volt"), ("1.62*mV", 0.00162, "volt"),
    ("5*Hz", 5.0, "hertz"), ("5 Hz", 5.0, "hertz"), ("0.5", 0.5, "1"),
    ("3e-3 * second", 0.003, "second"), ("1e3 Hz", 1000.0, "hertz"),
    ("10*mV/ms", 10.0, "volt/second"), ("10 mV/ms", 10.0, "volt/second"),
    (" 0.25 nS ", 0.25e-9, "siemens"), ("200 pF", 200e-12, "farad"), ("2 mM", 2.0, "mole/metre^3"),
])
def test_parse_quantity_strings(text, value, dim):
    got, got_dim = parse_quantity(text)
    assert got == value and str(got_dim) == dim  # exact: decimal literals are scaled exactly


def test_parse_quantity_numbers_have_unknown_dimension():
    assert parse_quantity(0.5) == (0.5, None)
    assert parse_quantity(3) == (3.0, None) and isinstance(parse_quantity(3)[0], float)
    assert parse_quantity(np.float32(2.0)) == (2.0, None)
    array, dim = parse_quantity(np.array([1, 2, 3]))
    assert dim is None and array.dtype == float and array.tolist() == [1.0, 2.0, 3.0]


def test_parse_quantity_pi():
    assert parse_quantity("2*pi*5*Hz")[0] == pytest.approx(10 * math.pi)


@pytest.mark.parametrize("value", ["20*mss", "20 xyz", "twenty ms", "20 ms ms", True, None,
                                   object(), np.array(["a"])])
def test_parse_quantity_bad_values(value):
    with pytest.raises(UnitError):
        parse_quantity(value)


def test_parse_quantity_caret_after_number():
    with pytest.raises(UnitError) as info:
        parse_quantity("20 mVV")
    assert str(info.value).splitlines()[-1] == "       ^^^"
    assert "Did you mean 'mV'?" in str(info.value)


# --- unit names in equations --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mV", "ms", "nA", "pA", "Hz", "kHz", "volt", "second", "amp",
                                  "siemens", "farad", "ohm", "Mohm", "metre", "mM", "nS", "pF",
                                  "mvolt", "msecond", "namp", "pfarad", "nsiemens", "kohm",
                                  "umetre", "µV", "μs"])
def test_common_units_are_names_in_equations(name):
    assert is_unit_name(name) and name in UNIT_NAMES
    scale, dim = unit_symbol(name)
    assert (scale, dim) == parse_unit(name)


@pytest.mark.parametrize("name", ["m", "s", "g", "A", "C", "F", "S", "V", "W", "J", "K", "h",
                                  "n", "u", "v", "x", "t", "dt", "tau", "El", "ge", "fs", "damp",
                                  "Ω", "M", "L", "N", "T", "H"])
def test_variable_like_names_are_not_units_in_equations(name):
    assert not is_unit_name(name)
    with pytest.raises(KeyError):
        unit_symbol(name)


def test_every_expression_unit_parses_alike():
    for name in UNIT_NAMES:
        assert len(name) > 1
        assert unit_symbol(name) == parse_unit(name), name


# --- dimension_of -------------------------------------------------------------------------------

def test_cuba_lif_rhs_is_volt_per_second():
    assert dimension_of((ge + gi - (v - El)) / taum, DIMS) == VOLT / SECOND


def test_mismatch_names_both_sides_and_dimensions():
    with pytest.raises(UnitError) as info:
        dimension_of(ge + taum, DIMS, where="group 'E'", line="dv/dt = (ge + taum)/taum : volt")
    message = str(info.value)
    assert message.startswith("group 'E': cannot add 'ge' (volt) and 'taum' (second)")
    assert message.splitlines()[-1] == "    " + " " * 14 + "^^^^"


def test_number_plus_dimensioned_term_is_an_error_but_zero_is_not():
    with pytest.raises(UnitError, match=r"cannot add '1' \(dimensionless\) and 'v' \(volt\)"):
        dimension_of(v + 1, DIMS)
    assert dimension_of(sympy.Add(v, 0, evaluate=False), DIMS) == VOLT
    assert dimension_of(v / El + 1, DIMS) == DIMENSIONLESS


def test_exp_of_dimensioned_argument():
    with pytest.raises(UnitError, match=r"exp\(\) needs a dimensionless argument.*volt"):
        dimension_of(sympy.exp(v), DIMS)
    assert dimension_of(sympy.exp(-v / El), DIMS) == DIMENSIONLESS
    for func in (sympy.log, sympy.sin, sympy.cos, sympy.tanh, sympy.Function("exp")):
        with pytest.raises(UnitError):
            dimension_of(func(taum), DIMS)


def test_unknown_dimensions_are_wildcards():
    assert dimension_of(w * v, DIMS) is None
    assert dimension_of(w + v, DIMS) == VOLT
    assert dimension_of(w + 1, DIMS) == DIMENSIONLESS
    assert dimension_of(sympy.Symbol("undeclared") + v, DIMS) == VOLT
    assert dimension_of(sympy.exp(w), DIMS) == DIMENSIONLESS
    assert dimension_of(w ** 2, DIMS) is None


def test_lookup_by_name_and_unit_symbols():
    real_v = sympy.Symbol("v", real=True)
    assert dimension_of(real_v, {v: VOLT}) == VOLT
    assert dimension_of(real_v, {"v": VOLT}) == VOLT
    expr = (El - v) / (10 * sympy.Symbol("ms"))
    assert dimension_of(expr, DIMS) == VOLT / SECOND


def test_powers():
    assert dimension_of(sympy.sqrt(v), DIMS) == VOLT ** Fraction(1, 2)
    assert dimension_of(v ** 2, DIMS) == VOLT ** 2 and dimension_of(v ** 2.0, DIMS) == VOLT ** 2
    assert dimension_of(2 ** (v / El), DIMS) == DIMENSIONLESS
    with pytest.raises(UnitError, match="fixed rational power"):
        dimension_of(v ** w, DIMS)
    with pytest.raises(UnitError, match="exponent 'taum'"):
        dimension_of(2 ** taum, DIMS)


def test_functions_that_keep_or_drop_dimensions():
    assert dimension_of(sympy.Abs(v), DIMS) == VOLT
    assert dimension_of(sympy.Min(v, El), DIMS) == VOLT
    assert dimension_of(sympy.Function("clip")(v, El, 0), DIMS) == VOLT
    assert dimension_of(sympy.Function("sqrt")(taum), DIMS) == SECOND ** Fraction(1, 2)
    assert dimension_of(sympy.sign(v) + sympy.Heaviside(v), DIMS) == DIMENSIONLESS
    assert dimension_of(sympy.Function("mystery")(v), DIMS) is None
    for bad in (sympy.Max(v, taum), sympy.Function("clip")(v, El, taum)):
        with pytest.raises(UnitError, match=r"volt.*second|second.*volt"):
            dimension_of(bad, DIMS)
    with pytest.raises(UnitError):  # an error inside an unknown function is still found
        dimension_of(sympy.Function("mystery")(v + taum), DIMS)


def test_conditions_and_branches():
    assert dimension_of(v > El, DIMS) == DIMENSIONLESS
    assert dimension_of(sympy.And(v > El, taum > 0), DIMS) == DIMENSIONLESS
    assert dimension_of(sympy.Piecewise((v, v > El), (0, True)), DIMS) == VOLT
    assert dimension_of(sympy.Function("where")(v > El, v, El), DIMS) == VOLT
    with pytest.raises(UnitError, match=r"cannot compare .v. .volt. and .taum. .second."):
        dimension_of(v > taum, DIMS)
    with pytest.raises(UnitError, match="branches"):
        dimension_of(sympy.Piecewise((v, v > El), (taum, True)), DIMS)


def test_numbers_alone_are_dimensionless():
    assert dimension_of(sympy.Integer(3), {}) == DIMENSIONLESS
    assert dimension_of(2.5, {}) == DIMENSIONLESS
    assert dimension_of(sympy.pi / 2, {}) == DIMENSIONLESS


# --- check_equal --------------------------------------------------------------------------------

def test_check_equal():
    check_equal(VOLT, VOLT, "v", "El")
    check_equal(VOLT, None, "v", "w")
    check_equal(None, SECOND, "v", "taum")
    with pytest.raises(UnitError) as info:
        check_equal(VOLT / SECOND, VOLT, "dv/dt", "(El - v)", where="eq 1",
                    line="dv/dt = (El - v) : volt")
    message = str(info.value)
    assert message.startswith("eq 1: 'dv/dt' has dimension volt/second but '(El - v)' has "
                              "dimension volt")
    assert message.splitlines()[-1] == "    " + " " * 8 + "^" * 8


def test_no_two_unit_spellings_collide():
    from snngen.units import _PARSE_UNITS, _PREFIXES, _UNITS
    for longs, short, p10, *_ in _UNITS:
        for name in (*longs.split(), short):
            assert _PARSE_UNITS[name][0] == p10, name
            for prefix, power in _PREFIXES.items():
                assert _PARSE_UNITS[prefix + name][0] == p10 + power, prefix + name
                assert _PARSE_UNITS[prefix + name][1] == _PARSE_UNITS[name][1], prefix + name


def test_check_equal_underlines_a_rewritten_right_hand_side():
    line = "dv/dt = (ge + gi - (v - El))/taum : volt (unless refractory)"
    with pytest.raises(UnitError) as info:
        check_equal(VOLT / SECOND, DIMENSIONLESS, "dv/dt", "(El + ge + gi - v)/taum", line=line)
    message = str(info.value)
    assert "'(El + ge + gi - v)/taum' is dimensionless" in message
    assert message.splitlines()[-1] == "    " + " " * 8 + "^" * 25


def test_zero_has_every_dimension():
    # '0*mV' folds to 0 when parsed: it must still fit a volt (issue 18)
    assert dimension_of(sympy.Integer(0), DIMS) is None
    check_equal(VOLT, dimension_of(sympy.Integer(0), DIMS), "v", "0")


def test_infinite_literal_in_a_quantity_is_refused():
    with pytest.raises(UnitError, match="'1e309' is too large") as err:
        parse_quantity("1e309*mV")
    assert err.value.args[0].splitlines()[-1] == "    ^^^^^"


# --- issue 18, second pass: hangs, deep nesting and huge values ------------------------------

@pytest.mark.parametrize("read", [parse_quantity, parse_unit])
@pytest.mark.parametrize("text", ["9**9**9*ms", "20*ms**9999", "2**-10**9*ms", "(10**300)**300"])
def test_huge_powers_are_refused_without_being_computed(read, text):
    import time
    start = time.perf_counter()
    with pytest.raises(UnitError, match="outside the range of a 64-bit float"):
        read(text)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("text", ["-" * 5000 + "1*ms", "*".join(["ms"] * 5000),
                                  "+".join(["1"] * 5000), "(" * 300 + "ms" + ")" * 300,
                                  "2**" * 100 + "1", "(0x" + "f" * 5000 + ")*ms"],
                         ids=["signs", "product", "sum", "parentheses", "powers", "hex"])
def test_long_or_deep_quantity_strings_are_unit_errors(text):
    with pytest.raises(UnitError):
        parse_quantity(text)


def test_long_chains_in_quantity_strings_are_loops_not_recursion():
    assert parse_quantity("+".join(["1*ms"] * 2000)) == (pytest.approx(2.0), parse_unit("s")[1])
    assert parse_quantity("-" * 999 + "1*ms")[0] == -0.001
    assert parse_unit("*".join(["ms"] * 30) + "/" + "/".join(["ms"] * 30)) == (1.0, DIMENSIONLESS)


@pytest.mark.parametrize("value", [10**400, -(10**400), 10**5000],
                         ids=["1e400", "-1e400", "1e5000"])
def test_python_ints_beyond_float64_are_invalid_values(value):
    from snngen.errors import InvalidValueError
    with pytest.raises(InvalidValueError, match="too large for a 64-bit float"):
        parse_quantity(value)


def test_a_list_holding_an_int_without_a_repr_is_a_unit_error():
    with pytest.raises(UnitError, match="over 4300 digits"):
        parse_quantity([10**5000])
