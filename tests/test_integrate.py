"""Discretisation: method choice, exactness against closed forms, no NaN in singular cases."""

import numpy as np
import pytest

import snngen as sg
from snngen.integrate import discretise

SYN = """
    dv/dt  = (ge - (v - El)) / taum : volt
    dge/dt = -ge / taue : volt
"""


def _simulate(model, params, init, steps, dt=1e-4, method=None, record=("v",)):
    net = sg.Network(dt=dt, seed=0, dtype="float64")
    pop = net.population("P", model, len(next(iter(params.values())))
                         if np.ndim(next(iter(params.values()))) else 1,
                         params=params, init=init, method=method)
    mon = net.monitor_state(pop, list(record))
    net.build().run(steps * dt)
    return mon


@pytest.mark.parametrize("taue", [5e-3, 20e-3, 20e-3 * (1 + 1e-9)])
def test_exact_matches_closed_form(taue):
    """v(t) for an initial ge: two exponentials, or t*exp(-t/tau) when the taus coincide."""
    taum, El, v0, g0 = 20e-3, -0.049, -0.06, 0.004
    model = sg.NeuronModel(SYN, name="syn")
    assert discretise(model).method == "exact"
    mon = _simulate(model, {"taum": taum, "taue": taue, "El": El}, {"v": v0, "ge": g0}, 2000,
                    record=("v", "ge"))
    t = mon.t
    if abs(taue - taum) < 1e-12:
        drive = g0 * t / taum * np.exp(-t / taum)
    else:
        drive = g0 * taue / (taue - taum) * (np.exp(-t / taue) - np.exp(-t / taum))
    expected = El + (v0 - El) * np.exp(-t / taum) + drive
    # near-equal taus: the closed form itself loses digits to cancellation
    rtol = 1e-12 if abs(taue - taum) == 0 or abs(taue - taum) > 1e-6 else 1e-6
    np.testing.assert_allclose(mon.v[0, :, 0], expected, rtol=rtol, atol=1e-15)
    np.testing.assert_allclose(mon.ge[0, :, 0], g0 * np.exp(-t / taue), rtol=1e-12)


def test_equal_time_constants_never_give_nan():
    model = sg.NeuronModel(SYN, name="syn")
    tau = np.array([0.01, 0.02, 0.02, 0.03])
    mon = _simulate(model, {"taum": tau, "taue": np.array([0.01, 0.02, 0.005, 0.03]),
                            "El": 0.0}, {"v": 0.0, "ge": 1.0}, 100)
    assert np.all(np.isfinite(mon.v))


@pytest.mark.parametrize("eqs, method", [
    ("dv/dt = -v / tau : 1", "exact"),
    ("dv/dt = -v * (1 + w) / tau : 1\ndw/dt = -w / tau : 1", "exponential_euler"),
    ("dv/dt = (v**2 - w) / tau : 1\ndw/dt = (v - w) / tau : 1", "euler"),
    ("dv/dt = (I0 * sin(2 * pi * f * t) - v) / tau : 1", "exponential_euler"),
])
def test_automatic_method_choice(eqs, method):
    assert discretise(sg.NeuronModel(eqs)).method == method


def test_forced_method_that_does_not_apply():
    model = sg.NeuronModel("dv/dt = v**2 / tau : 1")
    with pytest.raises(sg.IntegrationError, match="not linear"):
        discretise(model, "exact")
    with pytest.raises(sg.IntegrationError, match="unknown integration method"):
        discretise(model, "leapfrog")


@pytest.mark.parametrize("method, order", [("euler", 1), ("rk2", 2), ("rk4", 4)])
def test_convergence_order_of_explicit_methods(method, order):
    """Error against the exact solution of dv/dt = -v^2 shrinks as dt^order."""
    model = sg.NeuronModel("dv/dt = -v**2 / tau : 1")
    errors = []
    for dt in (4e-3, 2e-3):
        steps = int(round(0.1 / dt))
        mon = _simulate(model, {"tau": 0.05}, {"v": 1.0}, steps, dt=dt, method=method)
        exact = 1.0 / (1.0 + mon.t[-1] / 0.05)  # the last record: the start of the last step
        errors.append(abs(mon.v[0, -1, 0] - exact))
    assert np.log2(errors[0] / errors[1]) == pytest.approx(order, abs=0.3)


def test_hoisting_leaves_only_state_arithmetic_in_the_loop(cuba_model):
    d = discretise(cuba_model)
    text = str(d)
    assert "exp" not in text.split("every step:")[1]
    assert "_refractory" in text  # v is clamped while refractory


@pytest.mark.parametrize("method", ["auto", "exact"])
def test_a_bare_state_variable_on_the_right_is_linear(method):
    # xreplace of a bare symbol returns the mapping's value itself: it must be a sympy zero
    d = discretise(sg.NeuronModel("dx/dt = y\ndy/dt = -x / tau**2"), method)
    assert d.method == "exact"


def test_badly_scaled_propagators_are_accurate_to_rounding():
    # A = [[0, 1], [-1/tau**2, 0]] in SI units: entries 1 and 2.5e5; without balancing the
    # norm asks for six squarings and Phi is off by 7e-15, 1e-12 after 300 steps
    from snngen.linalg import propagate
    tau, dt = 0.002, 1e-4
    phi, _ = propagate(np.array([[0.0, 1.0], [-1 / tau**2, 0.0]]), dt)
    w = dt / tau
    exact = np.array([[np.cos(w), tau * np.sin(w)], [-np.sin(w) / tau, np.cos(w)]])
    np.testing.assert_allclose(phi, exact, rtol=5e-16, atol=0)


def test_exponential_euler_whose_only_linear_variable_is_clamped_discretises():
    # v is the only variable linear in itself and it is clamped: the refractory step has no
    # linear term left (it was refused as "not linear in its own variable")
    model = sg.NeuronModel("dv/dt = v / taum : 1 (unless refractory)\n"
                           "dw/dt = abs(v) / taum : 1", threshold="v > 1", reset="v = 0",
                           refractory="5*ms")
    d = discretise(model)
    assert d.method == "exponential_euler"
    import sympy as sp

    from snngen.integrate import REFRACTORY
    from snngen.parse import symbol
    v_new = dict(d.updates)[symbol("v")]
    assert isinstance(v_new, sp.Piecewise) and v_new.args[0] == (symbol("v"), REFRACTORY)
