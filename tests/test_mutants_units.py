"""Units against an independent table of SI dimensions and prefixes, and the caret rules.

Written to kill mutants of ``snngen/units.py`` that the other tests let through
(benchmarks/mutation.py, tests/RELIABILITY.md): a wrong exponent in a named unit, a wrong
prefix, a power of a named unit printed in base units, an identifier folded by NFKC, the
caret under the culprit of a mismatch, and where()'s branches.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy

import snngen as sg
from snngen.units import (
    DIMENSIONLESS,
    Dimension,
    check_equal,
    dimension_of,
    is_unit_name,
    parse_quantity,
    parse_unit,
)

#: (m, kg, s, A, K, mol, cd) of every named unit, from the SI brochure
SI = {
    "metre": (1, 0, 0, 0, 0, 0, 0), "gram": (0, 1, 0, 0, 0, 0, 0),
    "kilogram": (0, 1, 0, 0, 0, 0, 0), "second": (0, 0, 1, 0, 0, 0, 0),
    "amp": (0, 0, 0, 1, 0, 0, 0), "kelvin": (0, 0, 0, 0, 1, 0, 0),
    "mole": (0, 0, 0, 0, 0, 1, 0), "candela": (0, 0, 0, 0, 0, 0, 1),
    "volt": (2, 1, -3, -1, 0, 0, 0), "hertz": (0, 0, -1, 0, 0, 0, 0),
    "siemens": (-2, -1, 3, 2, 0, 0, 0), "farad": (-2, -1, 4, 2, 0, 0, 0),
    "ohm": (2, 1, -3, -2, 0, 0, 0), "coulomb": (0, 0, 1, 1, 0, 0, 0),
    "watt": (2, 1, -3, 0, 0, 0, 0), "joule": (2, 1, -2, 0, 0, 0, 0),
    "newton": (1, 1, -2, 0, 0, 0, 0), "pascal": (-1, 1, -2, 0, 0, 0, 0),
    "henry": (2, 1, -2, -2, 0, 0, 0), "weber": (2, 1, -2, -1, 0, 0, 0),
    "tesla": (0, 1, -2, -1, 0, 0, 0), "litre": (3, 0, 0, 0, 0, 0, 0),
    "molar": (-3, 0, 0, 0, 0, 1, 0),
}
SCALE = {"gram": 1e-3, "kilogram": 1.0, "litre": 1e-3, "molar": 1e3}
PREFIXES = {"y": -24, "z": -21, "a": -18, "f": -15, "p": -12, "n": -9, "u": -6, "\u00b5": -6,
            "\u03bc": -6, "m": -3, "c": -2, "d": -1, "k": 3, "M": 6, "G": 9, "T": 12}


@pytest.mark.parametrize("name", sorted(SI))
def test_named_units_have_their_si_dimension_and_scale(name):
    scale, dim = parse_unit(name)
    assert dim == Dimension(SI[name])
    assert scale == pytest.approx(SCALE.get(name, 1.0), rel=1e-15, abs=0)


def test_named_dimensions_print_by_name():
    for name in ("volt", "second", "amp", "siemens", "farad", "ohm", "hertz", "coulomb", "watt",
                 "joule", "newton", "pascal", "henry", "weber", "tesla", "metre", "kilogram",
                 "kelvin", "mole", "candela"):
        assert str(Dimension(SI[name])) == name


@pytest.mark.parametrize("text, name", [
    ("mole/metre**3", "mole/metre^3"), ("volt/second", "volt/second"),
    ("amp/second", "amp/second"), ("siemens/second", "siemens/second"),
    ("amp/metre**2", "amp/metre^2"), ("siemens/metre**2", "siemens/metre^2"),
    ("farad/metre**2", "farad/metre^2"), ("ohm*metre", "ohm metre"),
])
def test_compound_dimensions_print_by_name(text, name):
    assert str(parse_unit(text)[1]) == name


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_every_prefix_scales_by_its_power_of_ten(prefix):
    scale, dim = parse_unit(prefix + "metre")
    assert dim == Dimension(SI["metre"])
    # abs=0: approx's default absolute tolerance (1e-12) would accept 1e-17 for atto
    assert scale == pytest.approx(10.0 ** PREFIXES[prefix], rel=1e-12, abs=0)
    value, _ = parse_quantity(f"3 {prefix}second")
    assert value == pytest.approx(3 * 10.0 ** PREFIXES[prefix], rel=1e-12, abs=0)


def test_powers_of_named_units_print_as_powers():
    volt, second = Dimension(SI["volt"]), Dimension(SI["second"])
    assert str(volt ** -1) == "volt^-1"
    assert str(second ** -2) == "second^-2"
    assert str(volt ** 3) == "volt^3"
    assert str(volt ** Fraction(-1, 2)) == "volt^(-1/2)"
    assert str(Dimension((1, 0, -3, 0, 0, 0, 0))) == "m s^-3"


def test_default_dimension_is_dimensionless():
    assert Dimension() == DIMENSIONLESS and Dimension().is_dimensionless
    assert str(Dimension()) == "1"
    with pytest.raises(ValueError, match="7 exponents"):
        Dimension((0,) * 8)


def test_unit_names_are_folded_like_python_identifiers():
    """Python's parser applies NFKC: the OHM SIGN and the MICRO SIGN are units too."""
    assert is_unit_name("k\u2126")          # OHM SIGN -> GREEK CAPITAL OMEGA
    assert is_unit_name("\u00b5s") and is_unit_name("\u03bcs")
    assert is_unit_name("mV") and not is_unit_name("v")


def test_caret_goes_under_the_named_side():
    volt, second = Dimension(SI["volt"]), Dimension(SI["second"])
    with pytest.raises(sg.UnitError) as err:
        check_equal(second, volt, "refractory", "tref", line="2*tref")
    assert err.value.col == 2
    assert str(err.value).splitlines()[-1].strip() == "^" * len("tref")


def test_caret_goes_under_a_bare_number_in_a_sum():
    with pytest.raises(sg.UnitError, match="'3' \\(dimensionless\\) and 'v' \\(volt\\)") as err:
        sg.NeuronModel("dv/dt = (v + 3) / tau : volt").check_units({})
    assert err.value.col == err.value.line.index("3")
    with pytest.raises(sg.UnitError) as err:
        sg.NeuronModel("dv/dt = (3 + v) / tau : volt").check_units({})
    assert err.value.col == err.value.line.index("3")


def test_where_function_branches_must_agree():
    v, taum = sympy.symbols("v taum")
    volt, second = Dimension(SI["volt"]), Dimension(SI["second"])
    where = sympy.Function("where")
    dims = {v: volt, taum: second}
    assert dimension_of(where(v > 0, v, 2 * v), dims) == volt
    with pytest.raises(sg.UnitError, match="where"):
        dimension_of(where(v > 0, v, taum), dims)


def _carets(err) -> str:
    return str(err.value).splitlines()[-1].strip()


def test_carets_of_unit_syntax_errors():
    with pytest.raises(sg.UnitError, match="expected a unit") as err:
        parse_unit("")
    assert err.value.col == 0 and _carets(err) == "^"
    with pytest.raises(sg.UnitError, match="unmatched") as err:
        parse_unit(")mV")  # the error is at the first character
    assert err.value.col == 0 and _carets(err) == "^"
    with pytest.raises(sg.UnitError, match="unmatched") as err:
        parse_unit("  )mV")
    assert err.value.col == 2
    with pytest.raises(sg.UnitError, match="unmatched") as err:
        parse_unit("m)V")  # at the second character
    assert err.value.col == 1


def test_power_hint_only_for_the_caret_operator():
    with pytest.raises(sg.UnitError, match="use \\*\\* for powers"):
        parse_unit("mV^2")
    with pytest.raises(sg.UnitError, match="unsupported operator") as err:
        parse_unit("mV|2")
    assert "**" not in str(err.value)


def test_check_equal_carets_at_the_start_and_after_a_rewrite():
    volt, second = Dimension(SI["volt"]), Dimension(SI["second"])
    with pytest.raises(sg.UnitError) as err:  # found at column 0: stays there
        check_equal(volt, second, "x", "tau", line="tau = 5*ms")
    assert err.value.col == 0 and _carets(err) == "^^^"
    with pytest.raises(sg.UnitError) as err:  # rewritten by sympy: all after '=' (one char)
        check_equal(volt, second, "x", "2.00000000000000", line="x = 2")
    assert err.value.col == 4 and _carets(err) == "^"


def test_conditions_inside_where_are_checked():
    with pytest.raises(sg.UnitError, match="cannot compare 'v' \\(volt\\) and '2\\*ms'"):
        sg.NeuronModel("dv/dt = where(v > 2*ms, v, 2*mV) / tau : volt").check_units({})
    sg.NeuronModel("dv/dt = where(v > 2*mV, v, 2*mV) / tau : volt").check_units({})


def test_check_equal_without_a_line_or_a_right_hand_side():
    volt, second = Dimension(SI["volt"]), Dimension(SI["second"])
    with pytest.raises(sg.UnitError) as err:  # no line: no caret
        check_equal(volt, second, "x", "tau")
    assert err.value.col is None
    with pytest.raises(sg.UnitError) as err:  # no text to find: all after '='
        check_equal(volt, second, "x", "", line="x = 2")
    assert err.value.col == 4
    with pytest.raises(sg.UnitError) as err:  # neither found nor an '=': no caret
        check_equal(volt, second, "x", "", line="abc")
    assert err.value.col is None


# -- from the mutation run at HEAD after the Brian2 schedule (seed 1) -------------------------
@pytest.mark.parametrize("make", [
    lambda k: "(" * k + "ms" + "**1)" * k,               # powers nested on the left
    lambda k: "1**" * k + "1*ms",                        # powers nested on the right
    lambda k: "-(" * k + "ms" + ")*1" * k,               # a sign, then a product, nested
    lambda k: "1*(" * k + "ms" + ")" * k,                # products nested on the right
])
def test_nesting_limit_of_quantities_counts_every_level(make):
    from snngen.errors import UnitError
    from snngen.exprcheck import MAX_DEPTH
    from snngen.units import parse_quantity
    with pytest.raises(UnitError, match="nested more than"):
        parse_quantity(make(MAX_DEPTH + 2))
    parse_quantity(make(MAX_DEPTH // 2 - 2))


def test_oversized_numbers_are_named_with_where_they_came_from():
    from snngen.errors import InvalidValueError
    from snngen.units import parse_quantity
    with pytest.raises(InvalidValueError, match=r"^tau: 1000000.* is too large"):
        parse_quantity(10**400, where="tau")
    with pytest.raises(InvalidValueError, match=r"^1000000.* is too large"):
        parse_quantity(10**400)
