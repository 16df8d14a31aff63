"""Direct tests of snngen.model written from its mutation run (issue 18, item 7).

Each test pins one rule that a surviving mutant broke without any test noticing:
subexpressions in any order, unit checks of resets and of undeclared subexpressions, the
canonical text (the cache key) following every equation, the wording of missing-parameter
errors, the carets of model errors, clock-driven synaptic equations, the printed model.
"""

from __future__ import annotations

import pytest

import snngen as sg
from snngen.errors import EquationError, MissingParameterError, UnitError
from snngen.model import MAX_DEPTH, SECOND, is_quantity
from snngen.parse import symbol
from snngen.units import DIMENSIONLESS, parse_unit

VOLT = parse_unit("volt")[1]


def test_subexpressions_resolve_in_any_order():
    model = sg.NeuronModel("""
        dv/dt = (y - v) / tau : 1
        y = 2 * x : 1
        x = v + 1 : 1
    """)
    resolved = model.eqs.resolve(symbol("y"))
    v = symbol("v")
    assert resolved == 2 * (v + 1)
    assert set(model.eqs.subexpressions) == {"x", "y"}


def test_units_of_a_reset_are_checked():
    model = sg.NeuronModel("dv/dt = -v / tau : volt", threshold="v > 1*mV",
                           reset="v = 2*second")
    with pytest.raises(UnitError, match="v"):
        model.check_units({"tau": SECOND})
    sg.NeuronModel("dv/dt = -v / tau : volt", threshold="v > 1*mV",
                   reset="v = -70*mV").check_units({"tau": SECOND})


def test_an_undeclared_subexpression_keeps_its_inferred_unit():
    """``x = 2*second`` with no unit is a time: adding it to a voltage is a unit error."""
    model = sg.NeuronModel("dv/dt = (x - v) / tau : volt\nx = 2*second")
    with pytest.raises(UnitError):
        model.check_units({"tau": SECOND})
    sg.NeuronModel("dv/dt = (x - v) / tau : volt\nx = 2*mV").check_units({"tau": SECOND})


@pytest.mark.parametrize("make", [
    lambda rhs: sg.NeuronModel(f"dv/dt = {rhs} : 1"),
    lambda rhs: sg.SynapseModel(f"w : 1\ndA/dt = {rhs.replace('v', 'A')} : 1 (event-driven)",
                                on_pre="v += w"),
])
def test_canonical_text_and_key_follow_every_equation(make):
    a, b = make("-v / tau"), make("-2 * v / tau")
    assert a.canonical() != b.canonical()
    assert "tau" in a.canonical()
    if hasattr(a, "key"):
        assert a.key() != b.key() and len(a.key()) == 16
        assert a.key() == make("-v / tau").key()


def test_missing_parameters_are_named_with_the_right_plural():
    model = sg.NeuronModel("dv/dt = (El - v) / tau : 1")
    with pytest.raises(MissingParameterError) as one:
        model.check_parameters({"El": 0.0}, "population 'P'")
    assert "no value for parameter 'tau'" in str(one.value)
    assert "Give it in" in str(one.value) and "params={'tau': ...}" in str(one.value)
    with pytest.raises(MissingParameterError) as two:
        model.check_parameters({}, "population 'P'")
    message = str(two.value)
    assert "no value for parameters 'El', 'tau'" in message
    assert "Give them in" in message and "params={'El': ...}" in message


def test_a_model_without_equations_is_refused():
    with pytest.raises(EquationError, match="at least one equation"):
        sg.NeuronModel("# nothing here")
    sg.NeuronModel("I : 1", name="only_a_parameter")  # a declared parameter is a model


def _caret(err) -> str:
    return str(err.value).splitlines()[-1]


def test_carets_of_model_errors_have_the_documented_width():
    with pytest.raises(EquationError, match="refractoriness needs a threshold") as err:
        sg.NeuronModel("dv/dt = -v / tau : 1", refractory="5*ms")
    assert _caret(err) == "    ^"
    with pytest.raises(EquationError, match="on_pre and/or on_post") as err:
        sg.SynapseModel("w : 1")
    assert _caret(err) == "    ^"


def test_too_deep_substitution_points_at_the_subexpression():
    chain = ["x0 = v + 1 : 1"] + [f"x{k} = exp(x{k - 1}) : 1" for k in range(1, MAX_DEPTH + 5)]
    with pytest.raises(EquationError, match="nested") as err:
        sg.NeuronModel("dv/dt = -v / tau : 1\n" + "\n".join(chain),
                       threshold=f"x{MAX_DEPTH + 4} > 1")
    # the first subexpression that makes it too deep: its line, caret under the name used
    assert "x59 = exp(x58)" in str(err.value)
    assert err.value.col == len("x59 = exp(") and _caret(err).strip() == "^^^"


def test_clock_driven_synaptic_equations_are_refused_and_event_driven_ones_kept():
    with pytest.raises(EquationError, match="event-driven"):
        sg.SynapseModel("w : 1\ndA/dt = -A / tau : 1", on_pre="v += w")
    ok = sg.SynapseModel("w : 1\ndA/dt = -A / tau : 1 (event-driven)", on_pre="v += w")
    assert [t.name for t in ok.traces] == ["A"]


def test_printed_models_show_threshold_reset_and_pathways():
    neuron = repr(sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0"))
    assert "threshold: v > 1" in neuron and "reset: v = 0" in neuron
    bare = repr(sg.NeuronModel("dv/dt = -v / tau : 1"))
    assert "threshold" not in bare and "reset" not in bare
    syn = repr(sg.SynapseModel("w : 1", on_pre="v += w", on_post="w += 1"))
    assert "on_pre: v += w" in syn and "on_post: w += 1" in syn
    only_pre = repr(sg.SynapseModel("w : 1", on_pre="v += w"))
    assert "on_post" not in only_pre


def test_is_quantity_says_no_to_expressions_instead_of_raising():
    assert is_quantity("20*ms") and is_quantity("0.5")
    assert not is_quantity("i*ms")
    assert not is_quantity("v +")


def test_dimensions_of_unit_names_in_expressions():
    model = sg.NeuronModel("dv/dt = (-70*mV - v) / tau : volt")
    model.check_units({"tau": SECOND})
    wrong = sg.NeuronModel("dv/dt = (-70*ms - v) / tau : volt")
    with pytest.raises(UnitError):
        wrong.check_units({"tau": SECOND})
    assert DIMENSIONLESS != VOLT
