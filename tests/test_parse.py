"""The equation language: lines, statements, conditions and their errors."""

import pytest
import sympy as sp

import snngen as sg
from snngen.parse import parse_equations, parse_expression, parse_statements, symbol


def test_ode_subexpression_and_parameter_lines():
    eqs = parse_equations("""
        dv/dt = (I - v) / tau : volt (unless refractory)   # a comment
        I = g * (E - v) : volt
        tau : second (shared)
    """)
    kinds = [(e.kind, e.name, e.unit, e.flags) for e in eqs]
    assert kinds == [("ode", "v", "volt", ("unless refractory",)),
                     ("subexpression", "I", "volt", ()),
                     ("parameter", "tau", "second", ("shared",))]
    assert eqs[1].expr == symbol("g") * (symbol("E") - symbol("v"))


def test_functions_map_to_sympy():
    expr, names = parse_expression("clip(x, 0, 1) + where(x > 0, exp(x), -x) + abs(y)")
    x = symbol("x")
    assert expr.has(sp.Min) and expr.has(sp.Max) and expr.has(sp.Piecewise)
    assert set(names) == {"x", "y"}
    assert expr.subs({x: 2, symbol("y"): -1}) == 1 + sp.exp(2) + 1


def test_statements_with_all_operators():
    stmts = parse_statements("v = Vr; w += 1\nx -= 2; y *= 3; z /= 4")
    assert [(s.target, s.op) for s in stmts] == [("v", "="), ("w", "+="), ("x", "-="),
                                                 ("y", "*="), ("z", "/=")]


@pytest.mark.parametrize("text, fragment, col", [
    ("dv/dt = (El - v)) / tau : volt", "invalid syntax", 16),
    ("dv/dt = foo(v) : volt", "unknown function 'foo'", 8),
    ("dv/dt = -v/tau : volt (unles refractory)", "Did you mean 'unless refractory'", 23),
    ("dv/dt = -v : volt\ndv/dt = v : volt", "defined twice", 1),
    ("dt/dt = 1 : second", "reserved name", 1),
    ("dv/dt = v[0] : 1", "unsupported syntax", 8),
    ("dv/dt = -v : ", "missing unit", 11),
])
def test_equation_errors_have_a_caret(text, fragment, col):
    with pytest.raises(sg.EquationError) as err:
        parse_equations(text)
    message = str(err.value)
    assert fragment in message
    caret_line = message.splitlines()[-1]
    assert caret_line.index("^") - 4 == col, message


def test_unknown_name_gets_did_you_mean(cuba_model):
    net = sg.Network(dt=1e-4)
    params = dict(taum=0.02, taue=0.005, taui=0.01, Vt=-0.05, Vr=-0.06, Elx=-0.049)
    with pytest.raises(sg.UnknownNameError) as err:
        net.population("P", cuba_model, 10, params=params)
    message = str(err.value)
    assert "'El'" in message and "Did you mean 'Elx'" in message
    assert "^^" in message  # the caret points into the equation that uses El


def test_missing_parameters_are_named(cuba_model):
    net = sg.Network(dt=1e-4)
    with pytest.raises(sg.MissingParameterError) as err:
        net.population("P", cuba_model, 10, params={"taum": 0.02})
    message = str(err.value)
    for name in ("El", "Vr", "Vt", "taue", "taui"):
        assert repr(name) in message
    assert "population 'P'" in message and "params=" in message


def test_threshold_must_be_a_condition():
    with pytest.raises(sg.EquationError, match="must be a condition"):
        sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v + 1")


def test_reset_target_must_be_a_state():
    with pytest.raises(sg.UnknownNameError, match="Did you mean 'v'"):
        sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="vv = 0")


@pytest.mark.parametrize("text", ["dt += w", "t = 0", "v = 1; i += 1", "N = 2", "pi = 1"])
def test_statements_cannot_assign_reserved_names(text):
    # a synapse's on_pre 'dt += w' reached the lowering as a KeyError
    with pytest.raises(sg.EquationError, match="reserved name") as err:
        parse_statements(text)
    target = text.split(";")[-1].split()[0]
    assert err.value.args[0].splitlines()[-1].index("^") - 4 == text.rindex(target)
