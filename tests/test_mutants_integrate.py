"""Integration corner cases that mutants of ``snngen/integrate.py`` slipped through.

(benchmarks/mutation.py, tests/RELIABILITY.md): an input term that is exactly 1, a linear
coefficient that is exactly 1, the printed form of a model with nothing to hoist, and a
right-hand side that is a bare state variable (once an AttributeError in auto/exact).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import snngen as sg
from snngen.integrate import discretise

DT = 1e-4


def _run(eqs, params, init, steps, method=None, variables=("v",)):
    net = sg.Network(dt=DT, dtype="float64")
    pop = net.population("P", sg.NeuronModel(eqs, name="corner"), 1, params=params,
                         init=init, method=method)
    mon = net.monitor_state(pop, list(variables))
    net.build().run((steps + 1) * DT)
    # record k: the state at the start of step k (after k steps); the initial state dropped
    return {v: getattr(mon, v)[0, 1:, 0] for v in variables}, (np.arange(steps) + 1) * DT


def test_exact_with_an_input_term_of_one():
    """dv/dt = 1 - v/tau: the constant input is the number 1 itself."""
    assert discretise(sg.NeuronModel("dv/dt = 1 - v/tau")).method == "exact"
    out, t = _run("dv/dt = 1 - v/tau", {"tau": 0.01}, {"v": 0.5}, 200)
    np.testing.assert_allclose(out["v"], 0.01 + (0.5 - 0.01) * np.exp(-t / 0.01), rtol=1e-12)


def test_exponential_euler_with_a_coefficient_of_one():
    """dv/dt = v (a = 1 exactly): exponential Euler is the exact growth v0 e^t."""
    out, t = _run("dv/dt = v", {}, {"v": 2.0}, 200, method="exponential_euler")
    np.testing.assert_allclose(out["v"], 2.0 * np.exp(t), rtol=1e-13)


def test_printed_model_says_nothing_is_hoisted_only_when_nothing_is():
    assert "(nothing)" in str(discretise(sg.NeuronModel("dv/dt = v"), "euler"))
    assert "(nothing)" not in str(discretise(sg.NeuronModel("dv/dt = v"),
                                             "exponential_euler"))
    assert "(nothing)" not in str(discretise(sg.NeuronModel("dv/dt = -v / tau")))


def test_exact_harmonic_oscillator_with_a_bare_variable_on_the_right():
    eqs = "dx/dt = y\ndy/dt = -x / tau**2"
    assert discretise(sg.NeuronModel(eqs)).method == "exact"
    out, t = _run(eqs, {"tau": 0.002}, {"x": 1.0, "y": 0.0}, 300, variables=("x", "y"))
    np.testing.assert_allclose(out["x"], np.cos(t / 0.002), rtol=0, atol=1e-12)


@pytest.mark.parametrize("eq, between", [
    # A(t2) from A(t1) + 1 over the 20 ms between the two events
    ("dA/dt = (c - A) / tau : 1 (event-driven)",
     lambda a, c: c + (a + 1 - c) * np.exp(-0.02 / 0.02)),
    ("dA/dt = c : 1 (event-driven)", lambda a, c: a + 1 + c * 0.02),
])
def test_event_driven_trace_is_exact_between_events(eq, between):
    """Event-driven traces are advanced in closed form over the interval since their last
    update: with a constant drive (the exprel term) and without a linear part."""
    syn = sg.SynapseModel(f"""
        w1 : 1
        w2 : 1
        {eq}
    """, on_pre="""
        w2 = w1
        w1 = A
        A += 1
    """, name="trace")
    net = sg.Network(dt=DT, dtype="float64")
    pre = net.spike_source("pre", 1, [0, 0], [0.010, 0.030])
    post = net.population("N", sg.NeuronModel("dv/dt = -v / tau : 1"), 1, params={"tau": 1.0})
    c = 3.0
    proj = net.connect(pre, post, syn, "one_to_one", params={"c": c, "tau": 0.02})
    sim = net.build()
    sim.run(0.05)
    at_first, at_second = sim.synapses(proj, "w2")[0, 0], sim.synapses(proj, "w1")[0, 0]
    assert at_first > 0.01  # the drive acted before the first event
    assert at_second == pytest.approx(between(at_first, c), rel=1e-12)


def test_derivative_of_exprel():
    """exprel'(x) = (e^x x - e^x + 1) / x^2, used when gradients go through exponential
    Euler's update; checked against a central difference of expm1(x)/x."""
    import sympy as sp

    from snngen.integrate import exprel
    x = sp.Symbol("x")
    d = exprel(x).diff(x)
    for x0 in (-2.0, -0.3, 0.7, 3.0):
        h = 1e-5
        num = (np.expm1(x0 + h) / (x0 + h) - np.expm1(x0 - h) / (x0 - h)) / (2 * h)
        assert float(d.subs(x, x0)) == pytest.approx(num, rel=1e-8)


# -- from the mutation run at HEAD after the Brian2 schedule (seed 1) -------------------------
def test_exponential_euler_keeps_the_euler_step_of_a_variable_without_linear_term():
    """dv/dt = (-v + u**2)/tau is linear in v; du/dt = c has no term in u: u grows by c dt
    per step exactly."""
    eqs = "dv/dt = (-v + u**2) / tau : 1\ndu/dt = c : 1"
    assert discretise(sg.NeuronModel(eqs)).method == "exponential_euler"
    out, t = _run(eqs, {"tau": 0.01, "c": 3.0}, {"v": 0.0, "u": 0.5}, 50,
                  variables=("u",))
    np.testing.assert_allclose(out["u"], 0.5 + 3.0 * t, rtol=1e-13)


@pytest.mark.parametrize("eqs", [
    "dv/dt = -v * w / tau : 1\ndw/dt = -w / tau : 1",   # a coefficient holding a state
    "dv/dt = -v * t / tau**2 : 1",                       # a coefficient holding the time
])
def test_coefficients_that_vary_are_not_integrated_exactly(eqs):
    d = discretise(sg.NeuronModel(eqs), "auto")
    assert d.method != "exact"
    with pytest.raises(sg.IntegrationError):
        discretise(sg.NeuronModel(eqs), "exact")


def test_propagator_names_and_the_sign_of_the_threshold_function():
    # I is driven by the clamped v: the refractory step has propagators of its own (_R)
    lif = sg.NeuronModel(COUPLED, threshold="v > 1", reset="v = 0", refractory="2*ms")
    d = discretise(lif)
    names = sorted(s.name for p in d.propagators for _, s in p.phi + p.psi)
    assert any(n.startswith("_P") for n in names) and any(n.startswith("_R") for n in names)
    refractory = [p for p in d.propagators if p.phi and p.phi[0][1].name.startswith("_R")]
    assert refractory and all(p.phi for p in refractory)  # the clamped step keeps its entries
    # the refractory branch of I's update reads the _R propagators, the other branch _P
    (update,) = [e for x, e in d.updates if x.name == "I"]
    assert isinstance(update, sp.Piecewise)
    (while_refractory, _), (otherwise, _) = update.args
    assert {s.name[:2] for s in while_refractory.free_symbols if s.name[0] == "_"} >= {"_R"}
    assert not any(s.name.startswith("_R") for s in otherwise.free_symbols)
    assert all(s.is_real for p in d.propagators for _, s in p.phi + p.psi)
    assert all(s.is_real for s, _ in d.constants)
    v = sp.Symbol("v", real=True)
    assert d.g == v - 1
    below = discretise(sg.NeuronModel("dv/dt = -v / tm : 1", threshold="v < -1",
                                      reset="v = 0"))
    assert below.g == -1 - v


COUPLED = "dv/dt = (I - v) / tm : 1 (unless refractory)\ndI/dt = (v - I) / ts : 1"


def test_current_decays_exactly_while_the_membrane_is_clamped():
    """(unless refractory) freezes v at 0 after the spike; I, driven by v, then decays
    exactly as exp(-t/ts) (the refractory step's own propagator)."""
    net = sg.Network(dt=DT, dtype="float64")
    model = sg.NeuronModel(COUPLED, threshold="v > 1", reset="v = 0", refractory="5*ms",
                           name="clamped")
    pop = net.population("P", model, 1, params={"tm": 0.01, "ts": 0.02}, init={"I": 50.0})
    mon = net.monitor_state(pop, ["v", "I"])
    spikes = net.monitor_spikes(pop)
    net.build().run(80 * DT)
    s = int(spikes.step[0])
    i_rec, v_rec = mon.I[0, :, 0], mon.v[0, :, 0]
    assert np.all(v_rec[s + 1:s + 50] == 0.0)  # frozen at the reset value for R - 1 steps
    ratios = i_rec[s + 2:s + 50] / i_rec[s + 1:s + 49]
    np.testing.assert_allclose(ratios, np.exp(-DT / 0.02), rtol=1e-12)
