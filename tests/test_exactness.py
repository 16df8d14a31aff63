"""Every integration method checked by its numbers, not only by its name.

Each method is run through the public path (``NeuronModel`` -> ``Network`` -> the Numba
backend, float64) on problems it solves exactly, and compared with the closed form:

- ``exact``: linear systems with constant coefficients (a driven leak, a rotation, a chain
  of equal time constants, where the closed form has ``t**2 exp(-t/tau)``);
- ``exponential_euler``: each equation linear in its own variable, ``x' = a x + b`` with
  ``a`` and ``b`` held fixed over the step, so ``x + dt f(x) exprel(a dt)`` is the exact
  flow ``x e^(a dt) + b (e^(a dt) - 1) / a``. It is what ``method="auto"`` falls back to;
- ``euler``: ``v' = c`` (constant slope), and its own recursion ``v_n = a + (v0 - a)(1 -
  dt/tau)**n`` on a leak;
- ``rk2`` (explicit midpoint) and ``rk4`` (classic): right-hand sides polynomial in ``t`` of
  degree <= 1 and <= 3 (solutions of degree <= 2 and <= 4), and their stability polynomials
  ``1 + z + z**2/2`` and ``1 + z + ... + z**4/24`` on ``v' = -v / tau``.

On a nonlinear, time-dependent problem Euler, rk2 and rk4 are also compared step by step with
their Butcher tableaux evaluated in NumPy, and exponential Euler (auto's fallback for a leak
driven by ``sin(w t)``) with its one-step formula.
"""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg
from snngen.integrate import discretise

DT = 1e-4
RTOL = 1e-12


def trajectory(eqs, params, init, steps, method=None, n=None, variables=("v",)):
    """The states after steps 1..steps (float64, Numba), shape (steps, n) per variable,
    and the times they are recorded at ((k + 1) dt)."""
    model = sg.NeuronModel(eqs, name="exactness")
    if n is None:
        n = max([np.size(x) for x in list(params.values()) + list(init.values())] + [1])
    net = sg.Network(dt=DT, seed=0, dtype="float64")
    pop = net.population("P", model, n, params=params, init=init, method=method)
    mon = net.monitor_state(pop, list(variables))
    sim = net.build()
    sim.run((steps + 1) * DT)
    # record k is the state at the start of step k (t = k dt, after k steps): the initial
    # state first, then steps 1..steps
    out = {v: getattr(mon, v)[0, 1:] for v in variables}
    t = np.asarray(mon.t)[1:]
    np.testing.assert_allclose(t, (np.arange(steps) + 1) * DT, rtol=1e-12)
    return out, t


# -- exact -----------------------------------------------------------------------------------
def test_exact_driven_leak():
    a = np.array([0.0, 1.5, -0.7, 2.0])
    tau = np.array([0.01, 0.02, 0.003, 0.05])
    v0 = np.array([1.0, -0.2, 0.4, 2.0])
    eqs = "dv/dt = (a - v) / tau : 1"
    assert discretise(sg.NeuronModel(eqs)).method == "exact"
    out, t = trajectory(eqs, {"a": a, "tau": tau}, {"v": v0}, 300)
    expected = a + (v0 - a) * np.exp(-t[:, None] / tau)
    np.testing.assert_allclose(out["v"], expected, rtol=RTOL, atol=1e-15)


def test_exact_rotation():
    """A non-triangular A (complex eigenvalues): x = cos(w t), y = sin(w t)."""
    eqs = "dx/dt = -w * y : 1\ndy/dt = w * x : 1"
    w = np.array([50.0, 300.0, 1000.0])
    assert discretise(sg.NeuronModel(eqs)).method == "exact"
    out, t = trajectory(eqs, {"w": w}, {"x": 1.0, "y": 0.0}, 400, variables=("x", "y"))
    np.testing.assert_allclose(out["x"], np.cos(w * t[:, None]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["y"], np.sin(w * t[:, None]), rtol=0, atol=1e-12)


def test_exact_chain_of_equal_time_constants():
    """x1 -> x2 -> x3 with one tau: the singular case of the two-exponential closed form,
    x2 = (t/tau) e^(-t/tau) and x3 = (t/tau)^2 / 2 e^(-t/tau), plus a constant drive b."""
    eqs = """
        dx1/dt = -x1 / tau : 1
        dx2/dt = (x1 - x2) / tau : 1
        dx3/dt = (x2 - x3 + b) / tau : 1
    """
    tau, b = np.array([0.005, 0.02]), np.array([0.0, 0.3])
    out, t = trajectory(eqs, {"tau": tau, "b": b}, {"x1": 1.0, "x2": 0.0, "x3": 0.0}, 500,
                        variables=("x1", "x2", "x3"))
    s = t[:, None] / tau
    np.testing.assert_allclose(out["x1"], np.exp(-s), rtol=RTOL)
    np.testing.assert_allclose(out["x2"], s * np.exp(-s), rtol=RTOL)
    np.testing.assert_allclose(out["x3"], s**2 / 2 * np.exp(-s) + b * (1 - np.exp(-s)),
                               rtol=1e-11, atol=1e-15)


# -- exponential Euler -----------------------------------------------------------------------
def test_exponential_euler_is_exact_for_a_driven_leak():
    a = np.array([0.0, 1.5, -0.7])
    tau = np.array([0.01, 0.002, 0.05])
    v0 = np.array([1.0, -0.2, 0.4])
    out, t = trajectory("dv/dt = (a - v) / tau : 1", {"a": a, "tau": tau}, {"v": v0}, 300,
                        method="exponential_euler")
    expected = a + (v0 - a) * np.exp(-t[:, None] / tau)
    np.testing.assert_allclose(out["v"], expected, rtol=RTOL, atol=1e-15)


def test_auto_falls_back_to_exponential_euler_and_it_is_exact():
    """v' = -u^2 v / tau is not linear with constant coefficients (u is a state), so auto
    picks exponential Euler; u does not move (r = 0), so v = v0 exp(-u0^2 t / tau) + ...
    exactly."""
    eqs = "dv/dt = -u**2 * v / tau + c * u : 1\ndu/dt = r : 1"
    assert discretise(sg.NeuronModel(eqs)).method == "exponential_euler"
    u0 = np.array([0.5, 1.0, 2.0, 3.0])
    v0 = np.array([1.0, -2.0, 0.5, 0.0])
    tau, c = 0.01, 7.0
    out, t = trajectory(eqs, {"tau": tau, "c": c, "r": 0.0}, {"v": v0, "u": u0}, 300,
                        variables=("v", "u"))
    a = -u0**2 / tau
    b = c * u0
    e = np.exp(a * t[:, None])
    np.testing.assert_allclose(out["v"], v0 * e + b / a * (e - 1), rtol=RTOL, atol=1e-15)
    np.testing.assert_array_equal(out["u"], np.broadcast_to(u0, out["u"].shape))


def test_exponential_euler_step_is_the_exact_flow_with_other_variables_frozen():
    """One step from many (v, w): each variable gets x e^(a dt) + b (e^(a dt) - 1)/a with
    a = d(rhs)/dx and b = rhs - a x evaluated at the start of the step (w frozen for v)."""
    eqs = "dv/dt = (w**2 - v) / tau + k * w * v : 1\ndw/dt = -w / tau2 : 1"
    assert discretise(sg.NeuronModel(eqs)).method == "exponential_euler"
    rng = np.random.default_rng(3)
    v0, w0 = rng.uniform(-2, 2, 16), rng.uniform(-3, 3, 16)
    tau, tau2, k = 0.004, 0.02, 40.0
    out, _ = trajectory(eqs, {"tau": tau, "tau2": tau2, "k": k}, {"v": v0, "w": w0}, 1,
                        variables=("v", "w"))
    a = -1 / tau + k * w0
    b = w0**2 / tau
    expected_v = v0 * np.exp(a * DT) + b * np.expm1(a * DT) / a
    np.testing.assert_allclose(out["v"][0], expected_v, rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(out["w"][0], w0 * np.exp(-DT / tau2), rtol=RTOL)


def test_exponential_euler_symbolic_update_matches_the_flow():
    """The DiscreteModel's own update expression (before any backend) is the exact flow."""
    import sympy as sp

    from snngen.integrate import exprel
    from snngen.parse import symbol

    d = discretise(sg.NeuronModel("dv/dt = (a - v) / tau + v * u : 1\ndu/dt = -u / tau : 1"))
    assert d.method == "exponential_euler"
    consts = dict(d.constants)
    values = {symbol("a"): 0.3, symbol("tau"): 0.01, symbol("dt"): DT,
              symbol("v"): 0.7, symbol("u"): -20.0}
    new = dict(d.updates)[symbol("v")]
    for _ in range(3):  # constants may be written in terms of each other
        new = new.xreplace(consts)
    new = new.replace(exprel, lambda x: (sp.exp(x) - 1) / x)
    got = float(new.xreplace(values).evalf(30))
    a, b = -1 / 0.01 + -20.0, 0.3 / 0.01
    want = 0.7 * np.exp(a * DT) + b * np.expm1(a * DT) / a
    assert got == pytest.approx(want, rel=1e-14)


# -- Euler -----------------------------------------------------------------------------------
def test_euler_is_exact_for_a_constant_slope():
    c = np.array([-3.0, 0.0, 12.5])
    out, t = trajectory("dv/dt = c : 1", {"c": c}, {"v": 1.0}, 200, method="euler")
    np.testing.assert_allclose(out["v"], 1.0 + c * t[:, None], rtol=RTOL, atol=1e-14)


def test_euler_recursion_on_a_leak():
    a, tau, v0 = 0.8, np.array([0.001, 0.01]), -0.5
    out, _ = trajectory("dv/dt = (a - v) / tau : 1", {"a": a, "tau": tau}, {"v": v0}, 100,
                        method="euler")
    n = np.arange(1, 101)[:, None]
    np.testing.assert_allclose(out["v"], a + (v0 - a) * (1 - DT / tau) ** n, rtol=RTOL)


# -- Runge-Kutta ---------------------------------------------------------------------------
POLY = "dv/dt = p0 + p1 * t + p2 * t**2 + p3 * t**3 : 1"


@pytest.mark.parametrize("method, degree", [("rk2", 1), ("rk4", 3)])
def test_runge_kutta_is_exact_for_polynomials_in_t(method, degree):
    coeffs = [np.array([1.0, -2.0]), np.array([300.0, 50.0]), np.array([2e4, -1e4]),
              np.array([-3e6, 4e6])]
    coeffs = [c if k <= degree else np.zeros(2) for k, c in enumerate(coeffs)]
    params = {f"p{k}": c for k, c in enumerate(coeffs)}
    out, t = trajectory(POLY, params, {"v": 0.25}, 300, method=method)
    tt = t[:, None]
    expected = 0.25 + sum(c * tt ** (k + 1) / (k + 1) for k, c in enumerate(coeffs))
    np.testing.assert_allclose(out["v"], expected, rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("method", ["rk2", "rk4"])
def test_runge_kutta_is_inexact_one_degree_higher(method):
    """The check above can fail: one degree more and the error is far above rounding."""
    degree = {"rk2": 2, "rk4": 4}[method]
    eqs = f"dv/dt = p * t**{degree} : 1"
    p = 1e3 if method == "rk2" else 1e9
    out, t = trajectory(eqs, {"p": p}, {"v": 0.0}, 50, method=method)
    exact = p * t ** (degree + 1) / (degree + 1)
    assert abs(out["v"][-1, 0] - exact[-1]) > 1e-9 * abs(exact[-1])


@pytest.mark.parametrize("method, poly", [
    ("euler", [1.0, 1.0]),
    ("rk2", [1.0, 1.0, 1 / 2]),
    ("rk4", [1.0, 1.0, 1 / 2, 1 / 6, 1 / 24]),
])
def test_stability_polynomial_on_a_leak(method, poly):
    tau = np.array([0.0005, 0.002, 0.01])
    out, _ = trajectory("dv/dt = -v / tau : 1", {"tau": tau}, {"v": 1.0}, 120, method=method)
    z = -DT / tau
    r = sum(c * z**k for k, c in enumerate(poly))
    n = np.arange(1, 121)[:, None]
    np.testing.assert_allclose(out["v"], r**n, rtol=RTOL)


# -- one-step formulas on a nonlinear, time-dependent problem ----------------------------------
NONLINEAR = "dv/dt = (I0 * sin(w * t) - v**3 * s) / tau - v / tau2 : 1"
NL_PARAMS = {"I0": 2.0, "w": 400.0, "s": 0.5, "tau": 0.003, "tau2": 0.01}


def _f(t, v):
    p = NL_PARAMS
    return (p["I0"] * np.sin(p["w"] * t) - v**3 * p["s"]) / p["tau"] - v / p["tau2"]


TABLEAUX = {  # (A, b, c)
    "euler": ([[0.0]], [1.0], [0.0]),
    "rk2": ([[0.0, 0.0], [0.5, 0.0]], [0.0, 1.0], [0.0, 0.5]),
    "rk4": ([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1.0, 0]],
            [1 / 6, 1 / 3, 1 / 3, 1 / 6], [0.0, 0.5, 0.5, 1.0]),
}


def _reference(method, v0, steps):
    v, out = np.array(v0, dtype=np.float64), []
    for n in range(steps):
        t = n * DT
        A, b, c = TABLEAUX[method]
        k = []
        for i in range(len(b)):
            k.append(_f(t + c[i] * DT, v + DT * sum(A[i][j] * k[j] for j in range(i))))
        v = v + DT * sum(bi * ki for bi, ki in zip(b, k))
        out.append(v)
    return np.array(out)


@pytest.mark.parametrize("method", ["euler", "rk2", "rk4"])
def test_one_step_formula_on_a_nonlinear_problem(method):
    v0 = np.array([-0.5, 0.0, 0.3, 1.2])
    out, _ = trajectory(NONLINEAR, dict(NL_PARAMS), {"v": v0}, 200, method=method)
    np.testing.assert_allclose(out["v"], _reference(method, v0, 200), rtol=1e-11, atol=1e-14)


def test_auto_picks_exponential_euler_for_time_dependent_drive_with_its_formula():
    """What auto falls back to: a leak driven by sin(w t) (not constant coefficients)."""
    eqs = "dv/dt = (I0 * sin(w * t) - v) / tau : 1"
    assert discretise(sg.NeuronModel(eqs)).method == "exponential_euler"
    tau, I0, w = 0.002, 1.5, 700.0
    v0 = np.array([0.0, 1.0])
    out, _ = trajectory(eqs, {"tau": tau, "I0": I0, "w": w}, {"v": v0}, 200)
    v, ref = v0.copy(), []
    z = -DT / tau
    for n in range(200):
        v = v + DT * (I0 * np.sin(w * n * DT) - v) / tau * np.expm1(z) / z
        ref.append(v)
    np.testing.assert_allclose(out["v"], np.array(ref), rtol=1e-12, atol=1e-15)
