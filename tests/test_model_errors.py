"""Issue 18: valid models accepted, and every mistake in the model language refused with an
snngen error (what, where with a caret, how to fix) when the model is defined.

Most checks stop before compiling; the few that build and run a network use the Numba backend.
"""

import math
import time

import numpy as np
import pytest
import sympy as sp

import snngen as sg
from snngen import units as u
from snngen.backends.cuda.printer import CPrinter
from snngen.backends.numba.printer import NumbaPrinter, NumpyConstPrinter
from snngen.errors import EquationError, InvalidValueError, UnitError
from snngen.integrate import _Hoister, discretise
from snngen.ir.lower import lower
from snngen.ir.verify import verify
from snngen.model import NeuronModel, SynapseModel
from snngen.parse import MAX_DEPTH, parse_expression, symbol

v, tau = symbol("v"), symbol("tau")


def caret_col(err) -> int:
    """Column of the first caret in an error message."""
    return err.value.args[0].splitlines()[-1].index("^") - 4


# --- subexpressions mean the same everywhere ------------------------------------------------

SUB = NeuronModel("dv/dt = (I - v) / tau : 1\nx = 2*v : 1\nr = 2*tau : second",
                  threshold="x > 1", reset="v = x - 1.5", refractory="r", name="sub")
INLINE = NeuronModel("dv/dt = (I - v) / tau : 1", threshold="2*v > 1", reset="v = 2*v - 1.5",
                     refractory="2*tau", name="inline")


def test_subexpressions_are_substituted_in_threshold_reset_and_refractory():
    d, ref = discretise(SUB), discretise(INLINE)
    assert d.condition == ref.condition and d.g == ref.g
    assert d.reset == ref.reset and d.refractory == ref.refractory


def _lif_net(model):
    net = sg.Network(dt=1e-4, dtype="float64")
    pop = net.population("P", model, 4, params={"tau": "10*ms", "I": [0.0, 0.6, 0.9, 1.5]})
    return net, pop


def test_subexpressions_in_threshold_and_reset_lower_and_verify():
    verify(lower(_lif_net(SUB)[0]).program)  # was: IRError "uses undefined ['x']"


def test_subexpressions_in_threshold_reset_refractory_run_like_inlined():
    spikes = []
    for model in (SUB, INLINE):
        net, pop = _lif_net(model)
        mon = net.monitor_spikes(pop)
        net.build().run(0.1)
        spikes.append((np.asarray(mon.i), np.asarray(mon.step)))
    assert len(spikes[0][0]) > 5
    np.testing.assert_array_equal(spikes[0][0], spikes[1][0])
    np.testing.assert_array_equal(spikes[0][1], spikes[1][1])


def test_synaptic_subexpressions_are_substituted_in_statements():
    syn = SynapseModel("w : 1\nw2 = 2*w : 1", on_pre="v += w2")
    model = NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
    net = sg.Network(dt=1e-4)
    pop = net.population("P", model, 3, params={"tau": 0.01})
    net.connect(pop, pop, syn, "all_to_all", w=0.1)
    program = verify(lower(net).program)  # was: UnknownNameError for 'w2'
    body = [a for node in program.steps for a in getattr(node, "body", ())]
    assert any(str(a.expr) == "P_v + 2*P_w" or "2*" in str(a.expr) for a in body)


def test_subexpression_cycle_is_reported_with_its_line():
    with pytest.raises(EquationError, match="cycle") as err:
        NeuronModel("dv/dt = -a / tau : 1\na = b + 1 : 1\nb = 2*a : 1")
    assert "a = b + 1" in str(err.value) and "^" in str(err.value)


# --- zero has every unit ----------------------------------------------------------------

@pytest.mark.parametrize("eqs, reset", [("dv/dt = 0*volt/second : volt", None),
                                        ("dI/dt = 0 : 1", None),
                                        ("dv/dt = -v / tau : volt", "v = 0*mV"),
                                        ("dv/dt = -v / tau : volt", "v = 0")])
def test_zero_is_compatible_with_every_unit(eqs, reset):
    threshold = "v > 1*mV" if reset else None
    NeuronModel(eqs, threshold=threshold, reset=reset).check_units({"tau": u.parse_unit("s")[1]})


def test_a_nonzero_number_still_has_no_unit():
    model = NeuronModel("dv/dt = -v / tau : volt", threshold="v > 1*mV", reset="v = 1")
    with pytest.raises(UnitError, match="'v' has dimension volt but '1' is dimensionless"):
        model.check_units({"tau": u.parse_unit("s")[1]})


# --- conditions used as numbers ---------------------------------------------------------

def test_conditions_in_arithmetic_are_zero_or_one():
    expr, _ = parse_expression("(v == 1) / tau + True - False")
    assert expr.subs(tau, 2).subs(v, 1) == sp.Rational(3, 2)
    assert expr.subs(tau, 2).subs(v, 0) == 1
    model = NeuronModel("dv/dt = (v > 1) / tau : 1")  # was: sympy TypeError
    assert model.rhs["v"].subs({v: 2, tau: 1}) == 1


@pytest.mark.parametrize("text, col", [("not v", 4), ("v and (v > 1)", 0),
                                       ("where(v, 1, 2)", 6)])
def test_numbers_are_not_conditions(text, col):
    with pytest.raises(EquationError, match="need conditions") as err:
        parse_expression(text)
    assert caret_col(err) == col


# --- constants must be finite real float64 values ------------------------------------------

@pytest.mark.parametrize("rhs, fragment", [
    ("0/0", "not a finite number"), ("1/0", "not a finite number"),
    ("v + 1/0", "not a finite number"), ("(-1)**0.5", "complex"), ("sqrt(-1)", "complex"),
    ("1e309", "too large"), ("10**1000", "outside the range"), ("10**10**10", "outside the range"),
    ("pow(10, 1000)", "outside the range"), ("10**-1000", "outside the range"),
    ("exp(1000)", "too large"), ("log(0)", "not a finite"), ("1e308 * 10", "too large")])
def test_non_finite_and_complex_constants_are_refused_at_definition(rhs, fragment):
    start = time.perf_counter()
    with pytest.raises(EquationError, match=fragment) as err:
        NeuronModel(f"dv/dt = {rhs} : 1")
    assert time.perf_counter() - start < 5  # 10**10**10 is not computed digit by digit
    assert "^" in str(err.value) and "finite real number" in str(err.value)
    line = "dv/dt = " + rhs
    assert caret_col(err) >= line.index(rhs)


@pytest.mark.parametrize("kwargs", [{"reset": "v = 1/0"}, {"threshold": "v > 1e309"},
                                    {"refractory": "1e309*ms"}])
def test_non_finite_constants_in_conditions_resets_and_refractoriness(kwargs):
    kwargs = {"threshold": "v > 1", **kwargs}
    with pytest.raises(EquationError, match="finite real number"):
        NeuronModel("dv/dt = -v / tau : 1", **kwargs)


@pytest.mark.parametrize("on_pre, on_post", [("v += 1/0", None), ("v += w", "w = 0/0")])
def test_non_finite_constants_in_synaptic_statements(on_pre, on_post):
    with pytest.raises(EquationError, match="finite real number"):
        SynapseModel("w : 1", on_pre=on_pre, on_post=on_post)


@pytest.mark.parametrize("value", [math.inf, -0.001, math.nan])
def test_refractory_number_must_be_a_finite_duration(value):
    with pytest.raises(InvalidValueError, match="finite duration"):
        NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", refractory=value)


# --- printers write infinities and NaN as values that exist ------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numba_printer_writes_infinity_and_nan_as_math_constants(dtype):
    env = {"math": math, "_f": np.float32 if dtype == "float32" else float, "v": 2.0}
    for expr, expected in ((sp.oo, math.inf), (-sp.oo, -math.inf), (sp.Float("inf"), math.inf),
                           (sp.Float("-inf") * v, -math.inf)):
        assert eval(NumbaPrinter(dtype).doprint(expr), env) == expected
        assert eval(NumpyConstPrinter().doprint(expr), env) == expected
    assert math.isnan(eval(NumbaPrinter(dtype).doprint(sp.nan), env))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_printer_never_writes_names_nvrtc_lacks(dtype):
    for expr in (sp.oo, -sp.oo, sp.nan, sp.Float("inf") * v):
        text = CPrinter(dtype).doprint(expr)
        assert "INFINITY" not in text and "NAN" not in text and "inf" not in text
        assert "/0.0" in text


def test_cuda_printer_prints_each_argument_once():
    expr = v
    for _ in range(22):  # printing arguments twice made this 2**22 calls
        expr = sp.exp(sp.Max(expr, 0))
    start = time.perf_counter()
    CPrinter("float32").doprint(expr)
    assert time.perf_counter() - start < 5


# --- nesting and length --------------------------------------------------------------------

def test_long_chains_of_signs_are_folded():
    for n in (200, 201, 2000):
        expr, _ = parse_expression("-" * n + "v")
        assert expr == (v if n % 2 == 0 else -v)
    expr, _ = parse_expression("not " * 301 + "(v > 1)")
    assert expr == sp.Not(v > 1)


def test_long_sums_and_products_parse_flat():
    expr, _ = parse_expression(" + ".join(f"a{k}" for k in range(1000)))
    assert len(expr.args) == 1000
    expr, _ = parse_expression(" * ".join(f"a{k}" for k in range(500)) + " / b - c")
    assert len(expr.args) == 2
    # built left to right as Python reads it, so sympy folds numbers as it always did
    assert parse_expression("0.32*(13 - v)/(exp(v) - 1)/ms")[0] == \
        sp.Float(0.32) * (13 - v) / (sp.exp(v) - 1) / symbol("ms")


@pytest.mark.parametrize("text", ["exp(" * (MAX_DEPTH + 1) + "v" + ")" * (MAX_DEPTH + 1),
                                  "v" + "**v" * (MAX_DEPTH + 1)])
def test_too_deep_nesting_is_refused_with_the_limit(text):
    with pytest.raises(EquationError, match=f"more than {MAX_DEPTH} levels"):
        NeuronModel(f"dv/dt = {text} : 1")


@pytest.mark.parametrize("text", ["+".join(["v"] * 5000), "-" * 5000 + "v",
                                  "(" * 5000 + "v" + ")" * 5000])
def test_what_pythons_parser_cannot_read_is_an_equation_error(text):
    with pytest.raises(EquationError):
        NeuronModel(f"dv/dt = {text} : 1")
    with pytest.raises(EquationError):
        NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset=f"v = {text}")


def test_subexpressions_that_nest_too_deeply_once_substituted_are_refused():
    lines = ["dv/dt = -x20 / tau : 1", "x0 = v : 1"]
    lines += [f"x{k} = exp(x{k - 1}) : 1" for k in range(1, 21)]
    NeuronModel("\n".join(lines))  # 20 levels: fine
    lines = ["dv/dt = -x70 / tau : 1", "x0 = v : 1"]
    lines += [f"x{k} = exp(x{k - 1}) : 1" for k in range(1, 71)]
    with pytest.raises(EquationError, match="subexpressions substituted") as err:
        NeuronModel("\n".join(lines))
    assert "^" in str(err.value)
    deep = "exp(" * 40 + "v" + ")" * 40
    over = "exp(" * 25 + "a" + ")" * 25  # each fine alone, too deep together
    with pytest.raises(EquationError, match="subexpressions substituted") as err:
        NeuronModel(f"dv/dt = {over} : 1\na = {deep} : 1")
    assert err.value.args[0].splitlines()[1].strip().startswith("dv/dt")
    with pytest.raises(EquationError, match="subexpressions substituted"):
        NeuronModel(f"dv/dt = a : 1\na = {deep} : 1", threshold=f"{over} > 1")
    with pytest.raises(EquationError, match="subexpressions substituted"):
        SynapseModel(f"w : 1\na = {deep.replace('v', 'w')} : 1", on_pre=f"v += {over}")


def test_hoisting_walks_shared_subtrees_once():
    expr = v
    for _ in range(22):  # a tree of 2**22 nodes, a graph of 44
        expr = sp.exp(expr) * tau + sp.exp(expr)
    start = time.perf_counter()
    _Hoister({v})(expr)
    assert time.perf_counter() - start < 5


SUM = " + ".join(f"{1e-4 * (k + 1):g}*sin({k + 1}*v)" for k in range(500))


def _long_sum_net():
    model = NeuronModel(f"dv/dt = (I - v + {SUM}) / tau : 1", threshold="v > 1",
                        reset="v = 0", name="long")
    net = sg.Network(dt=1e-4, dtype="float64")
    pop = net.population("P", model, 3, params={"tau": 0.01, "I": [0.0, 1.2, 2.0]})
    return net, pop


def test_a_500_term_sum_lowers_and_renders_to_valid_python():
    from snngen.backends.numba.render import render
    lowered = lower(_long_sum_net()[0])
    compile(render(verify(lowered.program), lowered.constants), "<long sum>", "exec")


@pytest.mark.slow
def test_a_500_term_sum_builds_and_runs():
    net, pop = _long_sum_net()
    mon = net.monitor_spikes(pop)
    net.build().run(0.05)
    assert len(mon.i) > 0


# --- units checked when the model is made ---------------------------------------------------

def test_unit_typos_are_reported_when_the_model_is_defined():
    with pytest.raises(UnitError, match="unknown unit 'vot'") as err:
        NeuronModel("dv/dt = -v / tau : vot")
    assert caret_col(err) == len("dv/dt = -v / tau : ")
    with pytest.raises(UnitError, match="unknown unit 'vot'"):
        SynapseModel("w : vot", on_pre="v += w")
    with pytest.raises(UnitError, match="unknown unit 'sec'"):
        NeuronModel("dv/dt = -v / tau : 1\nr = 2*tau : sec")


# --- constants inside chains, refractoriness, argument types (issue 18, second pass) ------

@pytest.mark.parametrize("text, col, message", [
    ("(1/0)*ms", 1, "divides by zero"),           # sympy: zoo*ms, hidden by the symbol
    ("1/0*ms", 0, "divides by zero"),
    ("x/0", 0, "divides by zero"),
    ("x*1e308*10", 0, "too large"),               # 1.0e+309*x
    ("x + 1e308 + 1e308", 0, "too large"),        # x + 2.0e+308
    ("(x*1e200)**2", 0, "too large"),             # 1.0e+400*x**2
])
def test_bad_constants_inside_a_chain_or_beside_a_name_are_refused(text, col, message):
    with pytest.raises(EquationError, match=message) as err:
        parse_expression(text)
    assert caret_col(err) == col


def test_refractory_that_divides_by_zero_is_refused_when_the_model_is_made():
    with pytest.raises(EquationError, match="divides by zero"):
        NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", refractory="(1/0)*ms")


@pytest.mark.parametrize("ref", ["2 ms", "2ms", " 2 ms", "2*ms", "2 msecond", 0.002,
                                 np.float32(0.002), np.uint64(0)])
def test_refractory_reads_quantity_strings_and_seconds_like_every_quantity(ref):
    model = NeuronModel("dv/dt = -v / tau : volt", threshold="v > 1*mV", refractory=ref)
    model.check_units({"tau": u.parse_unit("second")[1]})  # a float is seconds, not a UnitError
    expected = u.parse_quantity(ref)[0] if isinstance(ref, str) else float(ref)
    assert float(model.eqs.resolve(model.refractory)) == pytest.approx(expected, rel=1e-7)


def test_refractory_with_a_number_before_a_name_that_is_not_a_unit_says_write_a_star():
    with pytest.raises(EquationError, match=r"write '2\*tref'") as err:
        NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", refractory="2 tref")
    assert caret_col(err) == 0
    with pytest.raises(UnitError, match="second"):  # a quantity of the wrong unit: at use
        NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", refractory="2 mV") \
            .check_units({})


@pytest.mark.parametrize("bad", [True, np.array(0.001), [0.001], None.__class__, b"2*ms",
                                 bytearray(b"2*ms"), 1j, math.nan, -1, math.inf, 10**400])
def test_refractory_of_another_type_or_range_is_an_invalid_value_naming_it(bad):
    with pytest.raises(InvalidValueError, match="refractory of 'neuron'"):
        NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", refractory=bad)


LIF_TEXT = "dv/dt = -v / tau : 1"


@pytest.mark.parametrize("bad", [np.uint64(3), math.nan, bytearray(b"v > 1"), b"v > 1",
                                 ["v > 1"], 3, object()])
@pytest.mark.parametrize("argument, make", [
    ("model 'neuron'", lambda bad: NeuronModel(bad)),
    ("threshold of 'neuron'", lambda bad: NeuronModel(LIF_TEXT, threshold=bad)),
    ("reset of 'neuron'", lambda bad: NeuronModel(LIF_TEXT, threshold="v > 1", reset=bad)),
    ("synapse 'synapse'", lambda bad: SynapseModel(bad, on_pre="v += 1")),
    ("on_pre of 'synapse'", lambda bad: SynapseModel("w : 1", on_pre=bad)),
    ("on_post of 'synapse'", lambda bad: SynapseModel("w : 1", on_post=bad)),
])
def test_model_text_that_is_not_a_string_is_an_invalid_value_naming_the_argument(
        bad, argument, make):
    with pytest.raises(InvalidValueError, match=f"{argument}: expected .* in a string"):
        make(bad)


def test_equations_none_is_an_invalid_value():
    with pytest.raises(InvalidValueError, match="expected equations"):
        NeuronModel(None)


def test_a_parameter_that_folds_away_is_still_a_parameter_of_the_model():
    # 0*mV is zero of any unit, so '(0*mV) / taum' folds to 0: taum is still written there
    model = NeuronModel("dv/dt = (0*mV) / taum : volt", threshold="v > 0*w", reset="v = 0*r",
                        refractory="0*tref")
    assert model.parameter_names == ("r", "taum", "tref", "w")
    net = sg.Network(dt=1e-4)
    net.population("P", model, 3, params={"taum": "20*ms", "w": 1, "r": 1, "tref": 1})
