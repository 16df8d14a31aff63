"""Direct tests of the learning step's derivation (snngen.derive.step), written from its
mutation run (issue 18, item 7): the detached reset, refractory neurons that cannot spike,
the soft spike, the Jacobians' shapes and input targets, and the printed model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

import snngen as sg
from snngen.derive import derive
from snngen.derive.step import DETACHED
from snngen.errors import SnngenError
from snngen.integrate import REFRACTORY, discretise
from snngen.parse import symbol

LIF = "dv/dt = (I - v) / tm : 1\ndI/dt = -I / ts : 1"


def _lm(**kw):
    refractory = kw.pop("refractory", None)
    model = sg.NeuronModel(LIF, threshold="v > 1", reset="v = 0", refractory=refractory,
                           name="lif")
    return derive(discretise(model), inputs=["I"], **kw)


def test_detached_reset_is_the_reset_with_the_spike_held_constant():
    lm = _lm(detach_reset=True)
    z = sp.Symbol("zc", real=True)
    # next = u + z (R(u) - u) with R(v) = 0: v_next = (1 - z) u_v; I is not reset
    u_v = lm.detached_next[0].xreplace({DETACHED: 0})
    assert sp.simplify(lm.detached_next[0].xreplace({DETACHED: z}) - (1 - z) * u_v) == 0
    assert lm.detached_next[1] == lm.detached_next[1].xreplace({DETACHED: z})
    jac = lm.jacobian("next", "states")
    assert sp.simplify(jac[0, 0] - (1 - lm.spike) * sp.diff(u_v, symbol("v"))) == 0
    # the spike's own Jacobian is the same with or without the detached reset
    plain = _lm()
    assert sp.simplify(lm.jacobian("spike", "states") - plain.jacobian("spike", "states")) \
        == sp.zeros(1, 2)
    assert lm.jacobian("next", "states") != plain.jacobian("next", "states")


def test_refractory_neurons_do_not_spike():
    lm = _lm(refractory="2*ms")
    assert lm.spike.xreplace({REFRACTORY: sp.true}) == 0
    assert lm.spike.xreplace({REFRACTORY: sp.false}) == _lm().spike
    assert REFRACTORY not in _lm().spike.free_symbols


def test_soft_spike_is_a_sigmoid_of_beta_g():
    lm = _lm(soft_beta=4.0)
    g = sp.Symbol("g", real=True)
    assert sp.simplify(lm.spike - 1 / (1 + sp.exp(-4.0 * lm.g))) == 0
    assert sp.Rational(1, 2) == (1 / (1 + sp.exp(-4.0 * g))).subs(g, 0)
    assert lm.spike.xreplace({s: 0 for s in lm.spike.free_symbols}).is_number
    assert "soft, sigmoid(beta g) with beta=4.0" in str(lm)
    assert "hard, surrogate 'fast_sigmoid'" in str(_lm())


def test_jacobian_with_respect_to_nothing_has_no_columns():
    lm = _lm()
    assert lm.propagators  # exact LIF: propagator entries
    model = sg.NeuronModel("dv/dt = -v / tm : 1", threshold="v > 1", reset="v = 0")
    bare = derive(discretise(model))
    assert bare.inputs == ()
    assert bare.jacobian("next", "inputs").shape == (1, 0)
    assert bare.jacobian("spike", "inputs").shape == (1, 0)


def test_input_targets_must_be_states():
    with pytest.raises(SnngenError, match="'nope' is not a state"):
        _lm_inputs(["nope"])
    assert [str(x) for x in _lm().inputs] == ["_in_I"]


def _lm_inputs(inputs):
    model = sg.NeuronModel(LIF, threshold="v > 1", reset="v = 0")
    return derive(discretise(model), inputs=inputs)


# -- surrogates (snngen.derive.surrogate) --------------------------------------------------
_G = [-2.0, -0.6, -0.4, -0.1, 0.0, 0.1, 0.3, 0.45, 1.0, 2.5]


def _numbers(name, **params):
    from snngen.derive.surrogate import surrogate
    g = sp.Symbol("g", real=True)
    f = sp.lambdify(g, surrogate(name, g, **params), "math")
    return [float(f(x)) for x in _G]


@pytest.mark.parametrize("name, params, formula, area", [
    ("fast_sigmoid", {}, lambda g: 1 / (10 * abs(g) + 1) ** 2, 2 / 10),
    ("fast_sigmoid", {"beta": 3}, lambda g: 1 / (3 * abs(g) + 1) ** 2, 2 / 3),
    ("sigmoid", {}, lambda g: 5 * _sig(5 * g) * (1 - _sig(5 * g)), 1.0),
    ("arctan", {}, lambda g: 1 / (1 + (math.pi * g) ** 2), 1.0),
    ("triangle", {}, lambda g: max(0.0, 1 - abs(g)), 1.0),
    ("triangle", {"gamma": 0.3}, lambda g: 0.3 * max(0.0, 1 - abs(g)), 0.3),
    ("exponential", {}, lambda g: math.exp(-abs(g)), 2.0),
    ("exponential", {"alpha": 2, "beta": 4}, lambda g: 2 * math.exp(-4 * abs(g)), 1.0),
    ("gaussian", {}, lambda g: math.exp(-2 * g * g) / (math.sqrt(2 * math.pi) * 0.5), 1.0),
    ("boxcar", {}, lambda g: 1.0 if abs(g) < 0.5 else 0.0, 1.0),
    ("boxcar", {"width": 0.2}, lambda g: 5.0 if abs(g) < 0.1 else 0.0, 1.0),
    ("straight_through", {}, lambda g: 1.0, None),
])
def test_surrogates_have_their_published_formulas_and_areas(name, params, formula, area):
    got = _numbers(name, **params)
    assert got == pytest.approx([formula(x) for x in _G], rel=1e-12, abs=1e-15)
    if area is not None:  # the area under H'(g): 1 for the normalised ones
        from scipy.integrate import quad

        from snngen.derive.surrogate import surrogate
        g = sp.Symbol("g", real=True)
        f = sp.lambdify(g, surrogate(name, g, **params), "numpy")
        with np.errstate(over="ignore"):
            total = sum(quad(f, a, b, limit=200)[0] for a, b in ((-math.inf, -1), (-1, 0),
                                                                  (0, 1), (1, math.inf)))
        assert total == pytest.approx(area, rel=1e-6)


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_unknown_surrogate_parameters_name_the_first_in_order():
    from snngen.derive.surrogate import surrogate
    with pytest.raises(SnngenError, match="no parameter 'alpha'"):
        surrogate("fast_sigmoid", sp.Symbol("g"), zeta=1, alpha=2)


def test_the_surrogates_derivative_is_the_derivative_of_its_formula():
    """Also through a composite argument (the chain rule): this once differentiated with
    respect to the argument expression itself, which sympy refuses."""
    from snngen.derive.surrogate import surrogate, surrogate_function
    g = sp.Symbol("g", real=True)
    for name in ("sigmoid", "gaussian", "arctan"):
        d = sp.diff(surrogate_function(name)(g), g)
        assert sp.simplify(d - sp.diff(surrogate(name, g), g)) == 0
        h = sp.Symbol("h", real=True)
        assert float(sp.diff(surrogate_function(name)(2 * h), h).subs(h, 0.1)) == pytest.approx(
            float(2 * sp.diff(surrogate(name, g), g).subs(g, 0.2)))
